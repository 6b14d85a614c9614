"""Uploads whose structure would cost unbounded time, and data cut short: refused at upload, failed
in the worker, each with an error naming the problem.

The hostile files are written here chunk by chunk and segment by segment, after:
- PNG, https://www.w3.org/TR/png-3/ 5.3 "Chunk layout": a 4-byte length, a 4-byte type, the data
  and a CRC-32 of type and data. Pillow 12.3 handles every chunk in Python
  (.venv/.../PIL/PngImagePlugin.py: ``ChunkStream.read`` l.167, ``PngImageFile._open``'s loop
  l.779 up to the first IDAT, ``ChunkStream.verify`` l.234, ``load_read`` l.992, where "empty
  chunks are allowed", and ``load_end`` after it), so a flood of empty chunks costs time per
  chunk, not per byte.
- JPEG, ITU-T T.81 (https://www.w3.org/Graphics/JPEG/itu-t81.pdf) B.1.1 and B.2: SOI, marker
  segments with a 2-byte length, each SOS header followed by its entropy-coded data, EOI. In a
  progressive frame (G.1.2.2) an AC scan ends the bands of up to 32767 blocks with one EOBn code,
  so a scan costs a few bytes while libjpeg still visits every block of its component once per
  scan: libjpeg-turbo's maintainers expect applications to limit what they decode
  (https://github.com/libjpeg-turbo/libjpeg-turbo/issues/337, CVE-2019-13960). libjpeg fills the
  coefficients of a scan cut short with zeros and only warns, and Pillow ignores libjpeg's
  warnings (https://github.com/python-pillow/Pillow/blob/main/src/libImaging/JpegDecode.c: its
  ``output`` handler does nothing; "if (jerr.pub.num_warnings) return BROKEN;" is commented out),
  so such a file decoded grey.
- GIF, https://www.w3.org/Graphics/GIF/spec-gif89a.txt sections 15 to 27: at its test.
- Data without its end: PIL/ImageFile.py ``ImageFile.load`` (l.291) raises "image file is
  truncated" unless ``LOAD_TRUNCATED_IMAGES``.
"""

import io
import math
import os
import struct
import threading
import time
import zlib

import pytest
import requests
from conftest import encode, job_stored, photo_like
from django.conf import settings
from django.test import Client
from PIL import Image

from jobs import imaging
from jobs.image_structure import JPEG_MAX_BLOCK_PASSES, PARTS_BASE, PARTS_BYTES_EACH
from jobs.models import Job
from jobs.tasks import job_compress_task

pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "photo.png"):
    image = io.BytesIO(data)
    image.name = name
    return Client().post("/api/jobs", {"image": image})


def run_job(data: bytes, width: int, height: int, content_type: str) -> Job:
    """The job as the worker runs it: the Celery task on a committed job whose upload is stored.

    The upload skips the web's checks, as a job accepted before they existed did.
    """
    job = job_stored(data, width, height, content_type)
    job_compress_task.apply((str(job.id),))
    job.refresh_from_db()
    return job


# --- PNG -----------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_parts(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The signature and every (type, data) of a PNG."""
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return data[:8], chunks


def png_incompressible(size: int) -> bytes:
    """A PNG of random pixels, stored uncompressed: about ``size`` bytes of ordinary chunks."""
    side = int((size / 3) ** 0.5)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG", compress_level=0)
    return out.getvalue()


def png_chunk_flood(size: int) -> bytes:
    """A small valid PNG with empty private chunks between IHDR and IDAT, ``size`` bytes in all."""
    signature, chunks = png_parts(encode(photo_like(64, 48)))
    head = signature + png_chunk(*chunks[0])
    tail = b"".join(png_chunk(kind, data) for kind, data in chunks[1:])
    empty = png_chunk(b"prVt")
    return head + empty * ((size - len(head) - len(tail)) // len(empty)) + tail


def best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def inspect(data: bytes) -> None:
    try:
        imaging.image_inspect(file=io.BytesIO(data), max_pixels=settings.JOBS_MAX_PIXELS)
    except imaging.InvalidImage:
        pass


def test_a_png_chunk_flood_is_refused_in_about_the_time_a_normal_png_of_its_size_takes():
    normal = png_incompressible(settings.JOBS_MAX_UPLOAD_BYTES - 512 * 1024)
    flood = png_chunk_flood(len(normal))
    assert len(flood) // 12 > 700_000  # the reported 10 MB of 873k empty chunks, give or take

    response = upload(flood)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"] == "too_complex"
    assert "chunks" in response.json()["detail"]
    assert not Job.objects.exists()

    # Interleaved, so that both see the same load from the tests beside this one; the best of
    # each. On a quiet machine the flood takes 1.7 to 2.5 times the normal PNG (both a few ms);
    # before its chunks were counted it took seconds, a thousand times more.
    normal_seconds, flood_seconds = float("inf"), float("inf")
    for _ in range(10):
        normal_seconds = min(normal_seconds, best_of(1, lambda: inspect(normal)))
        flood_seconds = min(flood_seconds, best_of(1, lambda: inspect(flood)))
    print(f"validation of {len(normal)} bytes: normal PNG {normal_seconds * 1000:.0f} ms, "
          f"{len(flood) // 12} empty chunks {flood_seconds * 1000:.0f} ms")
    assert flood_seconds <= 5 * normal_seconds


@pytest.mark.django_db(transaction=True)
def test_four_chunk_floods_at_once_leave_a_normal_upload_its_slot(processes):
    """The reported scene, on the web process the pod runs: four 10 MB floods held the only upload
    slot about 7 s each, so a normal upload behind them waited out JOBS_UPLOAD_WAIT_SECONDS and got
    503 ``busy``. Refused from their structure, they hold it for milliseconds."""
    _, url = processes.web("uwsgi", env={"JOBS_MAX_CONCURRENT_UPLOADS": "1", "JOBS_UPLOAD_WAIT_SECONDS": "2"})
    flood = png_chunk_flood(settings.JOBS_MAX_UPLOAD_BYTES - 512 * 1024)
    normal = encode(photo_like(640, 480))
    answers: dict[str, list[requests.Response]] = {"flood": [], "normal": []}
    first_answer = threading.Event()

    def post(kind: str, data: bytes) -> None:
        answers[kind].append(requests.post(f"{url}/api/jobs", files={"image": ("a.png", data, "image/png")},
                                           timeout=120))
        first_answer.set()

    floods = [threading.Thread(target=post, args=("flood", flood)) for _ in range(4)]
    for thread in floods:
        thread.start()
    # Once a flood is answered, one of them has been through the slot (before: the others gave
    # up waiting while the first held it, and it held it for seconds more).
    assert first_answer.wait(timeout=120)
    post("normal", normal)
    for thread in floods:
        thread.join(timeout=180)
    (response,) = answers["normal"]
    assert response.status_code == 201, response.text
    assert [r.status_code for r in answers["flood"]] == [400] * 4, [r.text[:200] for r in answers["flood"]]
    assert {r.json()["error"] for r in answers["flood"]} == {"too_complex"}


def test_a_png_with_small_idat_chunks_within_the_bound_is_accepted_and_compressed():
    signature, chunks = png_parts(encode(photo_like(800, 600)))
    idat = b"".join(data for kind, data in chunks if kind == b"IDAT")
    pieces = [idat[i : i + PARTS_BYTES_EACH] for i in range(0, len(idat), PARTS_BYTES_EACH)]
    data = signature + png_chunk(*chunks[0]) + b"".join(png_chunk(b"IDAT", p) for p in pieces) + png_chunk(b"IEND")
    assert len(pieces) > PARTS_BASE
    response = upload(data)
    assert response.status_code == 201, response.content[:300]
    job = run_job(data, 800, 600, "image/png")
    assert job.status == "done", job.error


def gif_random(side: int) -> bytes:
    """A GIF of random pixels: LZW barely compresses it, so it is mostly 255-byte image sub-blocks."""
    return encode(Image.frombytes("P", (side, side), os.urandom(side * side)), "GIF")


def test_gif_extension_floods_are_refused_in_about_the_time_a_normal_gif_of_their_size_takes():
    """GIF89a sections 15 to 24: a 0x21 extension is a label and data sub-blocks (a size byte, then
    that many bytes, a zero size last). Pillow reads those before the first image in Python and
    joins a comment's sub-blocks with ``+=`` (PIL/GifImagePlugin.py ``GifImageFile._seek`` l.175,
    its comment loop l.252): a 4 MB comment of 1-byte sub-blocks took 510 s to validate here,
    800,000 empty comments 10 s."""
    normal = gif_random(1500)
    small = encode(photo_like(64, 48).convert("P"), "GIF")
    at = 13 + (3 << ((small[10] & 7) + 1) if small[10] & 0x80 else 0)  # after the global color table
    room = len(normal) - len(small) - 3
    empty_comments = small[:at] + b"\x21\xfe\x00" * (room // 3) + small[at:]
    tiny_sub_blocks = small[:at] + b"\x21\xfe" + b"\x01c" * (room // 2) + b"\x00" + small[at:]
    for hostile, problem in ((empty_comments, "extension blocks"), (tiny_sub_blocks, "sub-blocks")):
        response = upload(hostile, "photo.gif")
        assert response.status_code == 400, response.content[:300]
        assert response.json()["error"] == "too_complex"
        assert problem in response.json()["detail"]
        normal_seconds = best_of(5, lambda: inspect(normal))
        hostile_seconds = best_of(5, lambda: inspect(hostile))  # noqa: B023 - called at once
        print(f"GIF validation: normal {len(normal)} bytes {normal_seconds * 1000:.0f} ms, "
              f"{problem} {len(hostile)} bytes {hostile_seconds * 1000:.0f} ms")
        assert hostile_seconds <= 3 * normal_seconds
    assert not Job.objects.exists()


def test_the_pixel_limit_quoted_is_the_services():
    """A PNG declaring 20000x20000 is refused from its IHDR; a GIF declaring 65535x65535 reaches
    Pillow's own bomb check (PIL/Image.py ``_decompression_bomb_check``, twice MAX_IMAGE_PIXELS)."""
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND")
    gif = (b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
           + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00" + b"\x3b")
    limit = str(settings.JOBS_MAX_PIXELS)
    for data, name in ((png, "big.png"), (gif, "big.gif")):
        response = upload(data, name)
        assert response.status_code == 400, response.content[:300]
        body = response.json()
        assert body["error"] == "too_many_pixels"
        assert limit in body["detail"] and str(2 * Image.MAX_IMAGE_PIXELS) not in body["detail"], body


# --- JPEG ----------------------------------------------------------------------------------


def jpeg_segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def entropy_coded(bits: str) -> bytes:
    """Bits to bytes, padded with 1-bits, each 0xFF followed by a stuffed 0x00 (T.81 F.1.2.3)."""
    bits += "1" * (-len(bits) % 8)
    out = bytearray()
    for i in range(0, len(bits), 8):
        out.append(int(bits[i : i + 8], 2))
        if out[-1] == 0xFF:
            out.append(0)
    return bytes(out)


def jpeg_progressive_scans(width: int, height: int, ac_scans: int) -> bytes:
    """A valid progressive greyscale JPEG: one DC scan, then ``ac_scans`` AC scans of a few bytes.

    One Huffman table each: DC category 0 (every block mid-grey) and AC EOB14, whose 14 extra
    bits of ones make a run of 32767 blocks.
    """
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    out = b"\xff\xd8" + jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
    out += jpeg_segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    out += jpeg_segment(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
    out += jpeg_segment(0xC4, b"\x10" + b"\x01" + b"\x00" * 15 + b"\xe0")
    out += jpeg_segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + entropy_coded("0" * blocks)
    ac = jpeg_segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + entropy_coded(("0" + "1" * 14) * math.ceil(blocks / 32767))
    return out + ac * ac_scans + b"\xff\xd9"


def test_a_progressive_jpeg_of_many_cheap_scans_is_refused_at_upload_and_failed_by_the_worker():
    # 2000 scans of a 2000x2000 image: 96 kB; libjpeg took about 0.6 ms per scan here (1.2 s).
    hostile = jpeg_progressive_scans(2000, 2000, 2000)
    response = upload(hostile, "photo.jpg")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"] == "too_complex"
    assert "scans" in response.json()["detail"]
    assert not Job.objects.exists()

    job = run_job(hostile, 2000, 2000, "image/jpeg")
    assert job.status == "failed"
    assert "scans" in job.error and str(JPEG_MAX_BLOCK_PASSES) in job.error


def test_the_most_scans_accepted_cost_the_worker_about_one_more_decode():
    """Just under the bound, every block decoded JPEG_MAX_BLOCK_PASSES times: the job's decode costs
    a small multiple of decoding an ordinary JPEG of the same pixels, measured here together."""
    cheap_scans = jpeg_progressive_scans(2000, 2000, JPEG_MAX_BLOCK_PASSES - 1)
    imaging.image_inspect(file=io.BytesIO(cheap_scans), max_pixels=settings.JOBS_MAX_PIXELS)  # accepted
    ordinary = encode(photo_like(2000, 2000).convert("L"), "JPEG")

    def job(data: bytes) -> None:
        imaging.image_recompress(data=data, max_dimension=settings.JOBS_OUTPUT_MAX_DIMENSION,
                                 quality=settings.JOBS_OUTPUT_QUALITY)

    ordinary_seconds = best_of(3, lambda: job(ordinary))
    scans_seconds = best_of(3, lambda: job(cheap_scans))
    print(f"2000x2000: ordinary JPEG {ordinary_seconds * 1000:.0f} ms, "
          f"{JPEG_MAX_BLOCK_PASSES - 1} AC scans {scans_seconds * 1000:.0f} ms")
    assert scans_seconds <= 4 * ordinary_seconds


def animated(fmt: str, frames: int, **params: object) -> bytes:
    out = io.BytesIO()
    first, *rest = [photo_like(600, 400, seed=i).convert("P" if fmt == "GIF" else "RGB") for i in range(frames)]
    first.save(out, fmt, save_all=True, append_images=rest, **params)
    return out.getvalue()


def test_ordinary_files_of_every_structure_are_accepted_and_compressed():
    image = photo_like(1200, 900)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the result is 900x1200
    cases = {
        "progressive JPEG": encode(image, "JPEG", progressive=True, quality=90),
        "progressive, optimized, 4:4:4": encode(image, "JPEG", progressive=True, optimize=True, subsampling=0),
        "JPEG with restart markers": encode(image, "JPEG", restart_marker_blocks=4),
        "greyscale progressive JPEG": encode(image.convert("L"), "JPEG", progressive=True),
        "CMYK JPEG": encode(image.convert("CMYK"), "JPEG"),
        "JPEG with EXIF, and bytes after its end": encode(image, "JPEG", exif=exif) + b"\x00" * 100,
        "progressive JPEG of few scans built here": jpeg_progressive_scans(1200, 900, 8),
        "animated PNG": animated("PNG", 20),
        "animated GIF with a comment": animated("GIF", 20, comment=b"made here"),
        "interlaced GIF": encode(image.convert("P"), "GIF", interlace=True),
    }
    for name, data in cases.items():
        response = upload(data, "photo")
        assert response.status_code == 201, (name, response.content[:300])
        with Image.open(io.BytesIO(data)) as opened:
            job = run_job(data, *opened.size, Image.MIME[opened.format])
        assert job.status == "done", (name, job.error)


def test_a_jpeg_declaring_5000x5000_in_633_bytes_is_refused_and_fails_its_job_with_a_clear_error():
    """The reported file: a JPEG's headers, a few bytes of its scan, its end marker. The worker ended
    it ``done`` with a grey image; it is a file cut short, refused at upload, failed in the worker."""
    whole = encode(Image.new("L", (5000, 5000), 128), "JPEG")
    cut = whole[:631] + b"\xff\xd9"
    assert len(cut) == 633

    response = upload(cut, "photo.jpg")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"] == "corrupt_image"
    assert "cut short" in response.json()["detail"]

    job = run_job(cut, 5000, 5000, "image/jpeg")
    assert job.status == "failed"
    assert "cut short" in job.error and "5000x5000" in job.error
    result = Client().get(f"/api/jobs/{job.id}/result")
    assert result.status_code == 409
    assert result.json()["error"] == "failed"
    assert result.json()["job_error"] == job.error


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_an_image_cut_short_fails_its_job(fmt):
    """Without its end the decoder runs out of data: Pillow raises "image file is truncated" while
    PIL.ImageFile.LOAD_TRUNCATED_IMAGES is off (PIL/ImageFile.py ``ImageFile.load``)."""
    image = photo_like(400, 300)
    whole = encode(image.convert("P") if fmt == "GIF" else image, fmt)
    job = run_job(whole[: len(whole) * 2 // 3], 400, 300, Image.MIME[fmt])
    assert job.status == "failed"
    assert "truncated" in job.error or "incomplete" in job.error, job.error
