"""Cleaning: per-image quality scores, near-duplicate clusters, label
conflicts and the audit report.

- ``scores``: quality scores and perceptual hashes computed at ingest from the
  prepared pixels (stored in the staged metadata, so thresholds can change
  without decoding again);
- ``phash``: 64-bit perceptual hashes (DCT pHash, difference hash);
- ``neardup``: sub-quadratic Hamming-radius search (multi-index hashing) and
  union-find clusters;
- ``checks``: thresholds -> rejections, applied by the plan step;
- ``report``: ``gandata clean --report`` (counts, distributions, PNG grids,
  issues.parquet).
"""
