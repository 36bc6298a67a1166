"""Pixel-level cleaning signals, computed at ingest and searched in the plan step.

- ``scores``: quality scores and perceptual hashes computed at ingest from the
  prepared pixels (stored in the staged metadata, so thresholds can change
  without decoding again);
- ``phash``: 64-bit perceptual hashes (DCT pHash, difference hash);
- ``neardup``: sub-quadratic Hamming-radius search (multi-index hashing) and
  union-find clusters.

The decisions (thresholds -> rejections) are a plan step
(``gandata.plan.cleaning``); the audit report is ``gandata.stats.clean_report``.
"""
