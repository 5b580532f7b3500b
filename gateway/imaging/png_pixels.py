"""PNG pixels the way a browser shows them: 16-bit scaled to 8-bit, tRNS colours made transparent.

Pillow keeps 16-bit greyscale as ``I;16`` and reads 16-bit RGB as 8-bit (the high byte), but it
keeps a tRNS colour in the file's own bit depth: 16-bit values for 16-bit files, 0..3 for a 2-bit
greyscale file. Converting such an image to RGBA then clips 16-bit greys at 255 and compares
8-bit pixels with 16-bit or 2-bit keys. Here every value becomes 8-bit the way browsers do it
(the high byte, ``v >> 8``; low bit depths scaled up to 0..255) and the transparent colour is
matched on the file's own values where Pillow keeps them (16-bit grey), else on the 8-bit ones.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile

WHITE_LEVEL = 255
# Pillow raw modes of low-bit-depth greyscale PNGs -> the factor that takes a value to 0..255
LOW_DEPTH_SCALE = {"1": 255, "L;1": 255, "L;2": 85, "L;4": 17}
SIXTEEN_BIT_RAW_MODES = ("RGB;16B", "RGB;16L")


def transparency_in_pixel_units(image: Image.Image) -> None:
    """Before ``load``: express ``info["transparency"]`` in the units of the decoded pixels."""
    transparency = image.info.get("transparency")
    if transparency is None or not isinstance(image, ImageFile.ImageFile) or not image.tile:
        return
    args = image.tile[0].args
    raw_mode = args[0] if isinstance(args, tuple) else args
    if raw_mode in SIXTEEN_BIT_RAW_MODES and isinstance(transparency, tuple):
        image.info["transparency"] = tuple(value >> 8 for value in transparency)
    elif raw_mode in LOW_DEPTH_SCALE and isinstance(transparency, int):
        image.info["transparency"] = transparency * LOW_DEPTH_SCALE[raw_mode]


def sixteen_bit_grey_on_white(image: Image.Image) -> Image.Image:
    """An ``I;16``/``I`` image as 8-bit ``L`` (``v >> 8``); its tRNS grey, if any, becomes white."""
    values = np.asarray(image.convert("I") if image.mode not in ("I;16", "I;16B", "I;16L") else image)
    values = values.astype(np.int64)
    grey = np.clip(values >> 8, 0, WHITE_LEVEL).astype(np.uint8)
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        grey[values == transparent] = WHITE_LEVEL
    return Image.fromarray(grey)
