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
    """Validate an upload from its headers and structure, without decoding its pixels.

    Refuses non-images, decompression bombs (the pixel count comes from the header)
    and truncated files; the file extension and the client's content type are
    ignored. Decoding every pixel here cost the web worker as much CPU as a fifth of
    the job itself; the worker decodes the image anyway, and a file whose compressed
    data is corrupt past its structure fails its job there with the decoder's error.
    """
    try:
        with Image.open(file, formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImage(
                    "too_many_pixels",
                    f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
                )
            image_format = image.format or ""
            content_type = Image.MIME.get(image_format, "application/octet-stream")
            if image_format == "PNG":
                # Walks every chunk to IEND and checks its CRC; inflates nothing.
                image.verify()
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
    problem = _structure_problem(file, image_format)
    if problem:
        raise InvalidImage("corrupt_image", f"the image is incomplete: {problem}")
    return ImageInfo(content_type=content_type, width=width, height=height)


# A JPEG may carry a few bytes of padding after its end-of-image marker.
JPEG_TRAILER_SCAN_BYTES = 64


def _structure_problem(file: IO[bytes], image_format: str) -> str | None:
    """What is missing from the end of the file: how a truncated upload shows without decoding."""
    file.seek(0, 2)
    size = file.tell()
    if image_format == "JPEG":
        file.seek(max(0, size - JPEG_TRAILER_SCAN_BYTES))
        # 0xFFD9 cannot occur inside entropy-coded data (0xFF is stuffed there), so its
        # absence at the end means the scan data was cut off.
        if b"\xff\xd9" not in file.read():
            return "no JPEG end-of-image marker (FFD9) at the end of the file"
    elif image_format == "GIF":
        file.seek(max(0, size - 1))
        if file.read(1) != b"\x3b":
            return "no GIF trailer (3B) at the end of the file"
    elif image_format == "WEBP":
        file.seek(4)
        declared = int.from_bytes(file.read(4), "little") + 8
        if declared > size:
            return f"the RIFF header declares {declared} bytes but the file has {size}"
    file.seek(0)
    return None


def image_recompress(*, data: bytes, max_dimension: int, quality: int) -> CompressedImage:
    """Resize so that neither side exceeds ``max_dimension`` and re-encode as WebP."""
    with Image.open(BytesIO(data), formats=ACCEPTED_FORMATS) as image:
        # In place: exif_transpose otherwise returns a full-size copy, doubling the peak
        # memory of the largest accepted image (see infra/stack/config/memory.py).
        ImageOps.exif_transpose(image, in_place=True)
        image.thumbnail((max_dimension, max_dimension), Image.Resampling.LANCZOS)
        has_alpha = image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB")
        out = BytesIO()
        image.save(out, format=OUTPUT_FORMAT, quality=quality, method=4)
    return CompressedImage(data=out.getvalue(), content_type=OUTPUT_CONTENT_TYPE, width=image.width, height=image.height)
