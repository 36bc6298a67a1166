"""Generic helpers with no dataset knowledge: Arrow columns from numpy buffers
(``arrow``), file hashes (``hashing``) and fsspec URLs (``remote``).
"""
