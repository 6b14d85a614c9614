"""Pillow code: validating uploads and recompressing images. No Django here."""

from dataclasses import dataclass
from io import BytesIO
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
OUTPUT_FORMAT = "WEBP"
OUTPUT_CONTENT_TYPE = "image/webp"


class InvalidImage(Exception):
    """The upload is not an acceptable image; ``code`` names the problem."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class CompressedImage:
    data: bytes
    content_type: str
    width: int
    height: int


def image_inspect(*, file: IO[bytes], max_pixels: int) -> ImageInfo:
    """Decode the whole image, refusing non-images, truncated files and decompression bombs.

    The pixel count comes from the header and is checked before any pixel is
    decoded; the file extension and the client's content type are ignored.
    """
    try:
        with Image.open(file, formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImage(
                    "too_many_pixels",
                    f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
                )
            image.load()
            content_type = Image.MIME.get(image.format or "", "application/octet-stream")
    except InvalidImage:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidImage("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        # Pillow's message quotes the file object, whose repr holds the uploaded filename.
        raise InvalidImage(
            "not_an_image", f"the file is not a supported image ({', '.join(ACCEPTED_FORMATS)})"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated and corrupt data as OSError (and sometimes SyntaxError).
        raise InvalidImage("corrupt_image", f"the image could not be decoded: {exc}") from exc
    return ImageInfo(content_type=content_type, width=width, height=height)


def image_recompress(*, data: bytes, max_dimension: int, quality: int) -> CompressedImage:
    """Resize so that neither side exceeds ``max_dimension`` and re-encode as WebP."""
    with Image.open(BytesIO(data), formats=ACCEPTED_FORMATS) as image:
        # In place: exif_transpose otherwise returns a full-size copy, doubling the peak
        # memory of the largest accepted image (see infra/stack/memory.py).
        ImageOps.exif_transpose(image, in_place=True)
        image.thumbnail((max_dimension, max_dimension), Image.Resampling.LANCZOS)
        has_alpha = image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB")
        out = BytesIO()
        image.save(out, format=OUTPUT_FORMAT, quality=quality, method=4)
    return CompressedImage(data=out.getvalue(), content_type=OUTPUT_CONTENT_TYPE, width=image.width, height=image.height)
