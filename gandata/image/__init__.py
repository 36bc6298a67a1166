"""Pixels only, no dataset knowledge: bytes to an upright L/RGB image
(``decode``, with the libjpeg-turbo fast path in ``jpeg_turbo``), fitting it to
the square target size (``fit``: reduced JPEG decoding, crop/pad/stretch,
antialiased resize) and the augmentation of oversampled copies (``augment``).
"""
