"""Pillow code: validating uploads and recompressing images. No Django here.

PNG, JPEG and GIF files are walked by ``jobs.image_structure`` before Pillow reads them, at upload
and again in the worker (for jobs accepted before a check existed): its bounds on chunks,
segments, scans and sub-blocks keep what Pillow and libjpeg do with a file proportional to its
size and pixels.
"""

from dataclasses import dataclass
from io import BytesIO
from typing import IO

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from jobs.image_structure import InvalidImage, outline

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
OUTPUT_FORMAT = "WEBP"
OUTPUT_CONTENT_TYPE = "image/webp"


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

    Refuses non-images, decompression bombs (the pixel count comes from the header),
    truncated files and structures that would cost a decoder more than their size
    warrants (``too_complex``); the file extension and the client's content type are
    ignored. Decoding every pixel here cost the web worker as much CPU as a fifth of
    the job itself; the worker decodes the image anyway, and a file whose compressed
    data is corrupt past its structure fails its job there with the decoder's error.
    """
    file.seek(0)
    shape = outline(file.read())  # PNG, JPEG, GIF: every chunk, segment or block, at a bounded cost per byte
    file.seek(0)
    if shape is not None:
        _check_pixels(shape.width, shape.height, max_pixels)
    try:
        with Image.open(file, formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            _check_pixels(width, height, max_pixels)
            image_format = image.format or ""
            content_type = Image.MIME.get(image_format, "application/octet-stream")
    except InvalidImage:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow refuses above twice its MAX_IMAGE_PIXELS (179 million), far above the service's
        # limit; its message quotes its own limit, which is not the one a client must respect.
        raise InvalidImage("too_many_pixels", f"the image has more than {max_pixels} pixels, the limit") from exc
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


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidImage(
            "too_many_pixels", f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )


def _structure_problem(file: IO[bytes], image_format: str) -> str | None:
    """What is missing from the end of the file: how a truncated upload shows without decoding."""
    file.seek(0, 2)
    size = file.tell()
    # PNG, JPEG and GIF: image_structure.outline walked them to IEND, EOI and the trailer.
    if image_format == "WEBP":
        file.seek(4)
        declared = int.from_bytes(file.read(4), "little") + 8
        if declared > size:
            return f"the RIFF header declares {declared} bytes but the file has {size}"
    file.seek(0)
    return None


def image_recompress(*, data: bytes, max_dimension: int, quality: int) -> CompressedImage:
    """Resize so that neither side exceeds ``max_dimension`` and re-encode as WebP.

    Raises ``InvalidImage`` for a structure the upload's checks refuse (``image_structure``),
    and Pillow's errors for data it cannot decode: a file cut short raises OSError ("image file
    is truncated") as long as ``ImageFile.LOAD_TRUNCATED_IMAGES`` is off, its default.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: truncated images would decode as grey")
    outline(data)
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
