"""Pure image functions: check the sniffed format, read the header, decode, metadata, thumbnails.

Nothing here touches the database, the network or the event loop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from gateway.errors import ImageDecodeError, ImageTooLargeError, UnreadableImageError, UnsupportedImageError
from gateway.imaging.jpeg_decoder import decode_jpeg
from gateway.imaging.png_pixels import sixteen_bit_grey_on_white, transparency_in_pixel_units
from servicekit.sniffing import describe_unsupported, sniff_format

WHITE = (255, 255, 255)
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def ensure_supported(head: bytes) -> str:
    """The accepted format of these leading bytes, or ``UnsupportedImageError`` (415)."""
    image_format = sniff_format(head)
    if image_format is None:
        raise UnsupportedImageError(
            f"The file looks like {describe_unsupported(head)}; only JPEG and PNG images are accepted."
        )
    return image_format


@dataclass(frozen=True)
class ImageHeader:
    format: str
    mode: str
    width: int
    height: int


def read_header(path: Path, expected_format: str, max_pixels: int) -> ImageHeader:
    """Parse the header only (no pixel data is decoded) and enforce the pixel limit."""
    try:
        with Image.open(path, formats=[expected_format]) as image:
            width, height = image.size
            mode = image.mode
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(
            f"The image header declares more than {max_pixels:,} pixels; it was refused without decoding."
        ) from exc
    except (UnidentifiedImageError, SyntaxError, OSError, ValueError, EOFError) as exc:
        raise UnreadableImageError(
            f"The file starts like a {expected_format} but its header cannot be parsed ({_reason(exc, path)})."
        ) from exc
    if width < 1 or height < 1:
        raise UnreadableImageError(f"The {expected_format} header declares an empty image ({width}x{height}).")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}; it was refused without decoding."
        )
    return ImageHeader(format=expected_format, mode=mode, width=width, height=height)


def fit_within(size: tuple[int, int], box_px: int) -> tuple[int, int]:
    """The size ``size`` takes when scaled down to fit a ``box_px`` square (never up)."""
    width, height = size
    scale = min(1.0, box_px / width, box_px / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class DecodedImage:
    pixels: Image.Image
    exif: Image.Exif


def decode(path: Path, expected_format: str, largest_box_px: int) -> DecodedImage:
    """Decode every byte once, JPEG scaled down on load; data that is corrupt or ends early fails loudly."""
    try:
        with Image.open(path, formats=[expected_format]) as image:
            transparency_in_pixel_units(image)  # before getexif, which loads a PNG
            exif = image.getexif()
            if image.format in ("JPEG", "MPO"):
                reduced_size = fit_within(image.size, largest_box_px)
                pixels = decode_jpeg(path.read_bytes(), image.mode, reduced_size)
                if pixels is not None:
                    return DecodedImage(pixels=pixels, exif=exif)
                if isinstance(image, ImageFile.ImageFile):  # CMYK, or a quirk not patched away: Pillow decodes
                    image.draft(None, reduced_size)
            image.load()
            return DecodedImage(pixels=image, exif=exif)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"The image data is corrupt or truncated: {_reason(exc, path)}.") from exc


@dataclass(frozen=True)
class ImageMetadata:
    orientation: int
    taken_at: str | None
    camera_make: str | None
    camera_model: str | None
    file_datetime: str | None


def extract_metadata(exif: Image.Exif) -> ImageMetadata:
    """API metadata from EXIF; values are JSON-safe strings, malformed ones are None."""
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    orientation = exif.get(ExifTags.Base.Orientation)
    return ImageMetadata(
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
        taken_at=exif_datetime(
            exif_ifd.get(ExifTags.Base.DateTimeOriginal), exif_ifd.get(ExifTags.Base.OffsetTimeOriginal)
        ),
        camera_make=exif_text(exif.get(ExifTags.Base.Make)),
        camera_model=exif_text(exif.get(ExifTags.Base.Model)),
        file_datetime=exif_datetime(exif.get(ExifTags.Base.DateTime), exif_ifd.get(ExifTags.Base.OffsetTime)),
    )


def exif_text(value: Any) -> str | None:
    """A printable string from an EXIF ASCII value (bytes or str), or None when blank."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    cleaned = "".join(ch for ch in value.replace("\x00", "") if ch.isprintable()).strip()
    return cleaned[:255] or None


def exif_datetime(value: Any, offset: Any = None) -> str | None:
    """``YYYY:MM:DD HH:MM:SS`` as ISO 8601 as the camera wrote it; None when absent or invalid."""
    text = exif_text(value)
    if text is None:
        return None
    try:
        parsed = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007 (camera local time)
    except ValueError:
        return None
    iso = parsed.isoformat()
    offset_text = exif_text(offset)
    if offset_text is not None and _is_utc_offset(offset_text):
        iso += "Z" if offset_text in ("+00:00", "-00:00") else offset_text
    return iso


def _is_utc_offset(text: str) -> bool:
    return len(text) == 6 and text[0] in "+-" and text[3] == ":" and (text[1:3] + text[4:]).isdigit()


@dataclass(frozen=True)
class Thumbnail:
    width: int
    height: int
    data: bytes


def make_thumbnails(
    decoded: Image.Image, orientation: int, small_px: int, medium_px: int, quality: int
) -> tuple[Thumbnail, Thumbnail]:
    """(small, medium) upright RGB JPEGs without EXIF; medium first, small made from medium."""
    flat = flatten_to_rgb_or_l(decoded)
    medium = flat
    medium.thumbnail((medium_px, medium_px), Image.Resampling.BICUBIC, reducing_gap=2.0)
    small = medium.copy()
    small.thumbnail((small_px, small_px), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return _encode(small, orientation, quality), _encode(medium, orientation, quality)


def flatten_to_rgb_or_l(image: Image.Image) -> Image.Image:
    """RGB (or L, kept cheap until encoding); alpha and tRNS colours are flattened on white, 16-bit made 8-bit."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return sixteen_bit_grey_on_white(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("RGB", "L"):
        return image
    return image.convert("RGB")


def _encode(image: Image.Image, orientation: int, quality: int) -> Thumbnail:
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    upright = image.transpose(transpose) if transpose is not None else image
    if upright.mode != "RGB":
        upright = upright.convert("RGB")
    buffer = io.BytesIO()
    upright.save(buffer, "JPEG", quality=quality)
    return Thumbnail(width=upright.width, height=upright.height, data=buffer.getvalue())


def _reason(exc: BaseException, path: Path) -> str:
    """Pillow's message for a client, without the server-side path Pillow likes to quote."""
    text = str(exc).replace(repr(str(path)), "").replace(str(path), "").strip().rstrip(".")
    if isinstance(exc, UnidentifiedImageError):
        return "Pillow cannot identify it as an image"
    return " ".join(text.split()) or type(exc).__name__
