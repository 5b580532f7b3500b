"""Pure preprocessing: bytes -> upright RGB image -> BLIP pixel_values (NCHW float32).

Reproduces ``BlipImageProcessor``: convert to RGB (alpha composited on white), resize to the
configured size with the configured PIL filter, rescale in float64 then cast, normalize.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from inference.errors import ImageTooLargeError, UnreadableImageError, UnsupportedImageError
from inference.model_files import PreprocessConfig
from servicekit.sniffing import SNIFF_BYTES, describe_unsupported, sniff_format


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """The upright RGB image in ``data``; 415/422/413 errors for what cannot be captioned."""
    image_format = sniff_format(data)
    if image_format is None:
        raise UnsupportedImageError(
            f"The body looks like {describe_unsupported(data[:SNIFF_BYTES])}; only JPEG and PNG images are accepted."
        )
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageTooLargeError(f"The image has {width * height:,} pixels, over {max_pixels:,}.")
            opened.load()
            upright = ImageOps.exif_transpose(opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"The image has too many pixels ({exc}).") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImageError(f"The {image_format} image cannot be decoded: {exc}.") from exc
    return to_rgb(upright)


def to_rgb(image: Image.Image) -> Image.Image:
    """``transformers.image_transforms.convert_to_rgb``: alpha is composited on white."""
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def pixel_values(images: Sequence[Image.Image], config: PreprocessConfig) -> NDArray[np.float32]:
    """A batch of RGB images as normalized NCHW float32, exactly as BlipImageProcessor makes it."""
    mean = np.asarray(config.image_mean, dtype=np.float32)
    std = np.asarray(config.image_std, dtype=np.float32)
    batch = np.empty((len(images), 3, config.height, config.width), dtype=np.float32)
    resample = Image.Resampling(config.resample)
    for index, image in enumerate(images):
        resized = image.resize((config.width, config.height), resample=resample)
        rescaled = (np.asarray(resized, dtype=np.float64) * config.rescale_factor).astype(np.float32)
        batch[index] = ((rescaled - mean) / std).transpose(2, 0, 1)
    return batch
