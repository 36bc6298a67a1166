"""Figures and pictures of a dataset: balance figures of class counts
(``figures``), the ``gandata stats`` audit (``balance``, ``audit``), sample grids
and charts (``preview``) and the ``gandata clean`` report (``clean_report``).
"""
