"""The write stage and the files of a finished build: shards (``shards``, one
task per shard), samples.parquet (``samples_index``), rejected.jsonl
(``rejections``), the manifest (``manifest``, with licence summaries from ``provenance_summary``)
and publishing it all, manifest last (``publish``).
"""
