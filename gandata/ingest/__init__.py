"""The ingest stage: one source partition becomes one staged partition.

``partition`` decodes, fits and scores every sample of a partition in a worker;
``staging`` is the staging area's on-disk layout (uint8 images at the target
size as ``images.npy``, metadata as ``meta.parquet``, the partition's
rejections), written under a temporary name and renamed when complete.
"""
