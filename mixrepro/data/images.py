"""Decoding image files to RGB (Pillow), shared by every image-file loader."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def open_rgb(source):
    """A PIL RGB image from a path or bytes (grayscale and CMYK files are converted)."""
    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source)) as img:
        return img.convert("RGB")


def decode_rgb(source) -> np.ndarray:
    """uint8 [H, W, 3] from a path or bytes."""
    return np.asarray(open_rgb(source), dtype=np.uint8)
