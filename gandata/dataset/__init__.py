"""The on-disk format and its readers: the manifest (spec in docs/FORMAT.md),
``open_dataset`` (``reader``), normalization, ``verify``, ``export`` and
copying a dataset down from object storage (``download``).
"""
