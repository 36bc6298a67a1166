"""Helpers shared by the test modules: image files of every format, tiny datasets,
source records, a local web server. Test data is always made here, never fetched."""
