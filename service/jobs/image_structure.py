"""What an image file's structure says before any decoder runs: PNG chunks, JPEG markers, GIF blocks.

Each walk costs a bounded amount of work per byte and stops early on the shapes that make a
decoder loop without bound: a flood of tiny PNG chunks (Pillow handles each chunk in Python,
twice: ``PngImagePlugin.PngImageFile._open`` up to the first IDAT and ``ChunkStream.verify`` or
``load_end`` after it), a progressive JPEG with thousands of scans (libjpeg decodes every block
of a scan's components once per scan, however little data the scan holds), or GIF extensions
Pillow reads sub-block by sub-block in Python. The JPEG walk also finds scans that hold less
data than their blocks need: libjpeg fills the missing coefficients with zeros and only warns
("premature end of data segment"), and Pillow's JPEG decoder discards libjpeg's warnings
(``src/libImaging/JpegDecode.c``: its ``output`` handler does nothing), so such a file would
decode to a grey image. No Django, no Pillow here.
"""

import math
import re
import struct
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
JPEG_SOI = b"\xff\xd8"

# Chunks or marker segments a file may have: this many, plus one per KiB of file. A 10 MB PNG
# from libpng (8 KiB IDAT chunks) has about 1,300 chunks; a flood of empty 12-byte chunks has
# 870,000, which Pillow takes seconds to walk.
PARTS_BASE = 256
PARTS_BYTES_EACH = 1024

# libjpeg decodes each block of a scan's components once per scan. A progressive JPEG's scans
# cover the image's blocks about 5 to 10 times altogether (libjpeg's jpeg_simple_progression:
# 10 scans for YCbCr, 6 per component otherwise); more than this many times is refused.
JPEG_MAX_BLOCK_PASSES = 32

# T.81 G.1.2.2: one EOBn code (at least one bit) ends the bands of at most 32767 blocks.
JPEG_MAX_EOB_RUN = 32767


class InvalidImage(Exception):
    """The upload is not an acceptable image; ``code`` names the problem."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def __reduce__(self) -> tuple[type["InvalidImage"], tuple[str, str]]:
        # Celery pickles a task's exception for its result backend.
        return (InvalidImage, (self.code, self.detail))


@dataclass(frozen=True)
class Outline:
    width: int
    height: int
    parts: int  # chunks (PNG), marker segments (JPEG), blocks up to the first image (GIF)
    scans: int = 0


def parts_allowed(size: int) -> int:
    return PARTS_BASE + size // PARTS_BYTES_EACH


def outline(data: bytes | memoryview) -> Outline | None:
    """The outline of a PNG, JPEG or GIF file, checked; None for other formats (WebP).

    Raises ``InvalidImage``: ``corrupt_image`` for a broken or cut-off structure,
    ``too_complex`` for a structure whose decoding costs more than its size warrants.
    """
    head = bytes(data[:8])
    if head == PNG_SIGNATURE:
        return png_outline(data)
    if head[:3] == b"\xff\xd8\xff":
        return jpeg_outline(data)
    if head[:6] in GIF_SIGNATURES:
        return gif_outline(data)
    return None


def _corrupt(detail: str) -> InvalidImage:
    return InvalidImage("corrupt_image", f"the image is incomplete or corrupt: {detail}")


class _Budget:
    """Counts the parts a walk meets; past ``limit`` the file is ``too_complex``, for ``what``."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.used = 0

    def spend(self) -> None:
        self.used += 1
        if self.used > self.limit:
            raise InvalidImage("too_complex", f"the {self.what.format(limit=self.limit)}")


def _parts_budget(size: int, parts: str) -> _Budget:
    return _Budget(parts_allowed(size), f"{parts} more than {{limit}} (at most {PARTS_BASE} plus one per "
                                        f"{PARTS_BYTES_EACH} bytes of file)")


def png_outline(data: bytes | memoryview) -> Outline:
    """Walk every chunk to IEND, checking each CRC (what ``Image.verify`` did, inflating nothing).

    PNG (W3C PNG 3rd edition, 5.2 and 5.3): an 8-byte signature, then chunks of a 4-byte
    big-endian length (at most 2^31-1), a 4-byte type of ASCII letters, the data, and a CRC-32
    of type and data; IHDR first (13 bytes: width, height, ...), IEND last (5.6).
    """
    view = memoryview(data)
    size = len(view)
    chunks = _parts_budget(size, "PNG has chunks")
    pos = len(PNG_SIGNATURE)
    width = height = 0
    while True:
        if pos + 8 > size:
            raise _corrupt("the PNG ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", view, pos)
        chunks.spend()
        if length > 0x7FFFFFFF or not kind.isalpha() or not kind.isascii():
            raise _corrupt(f"PNG chunk {chunks.used} at byte {pos} is malformed")
        end = pos + 8 + length
        if end + 4 > size:
            raise _corrupt(f"the PNG ends inside its {kind.decode()} chunk")
        if chunks.used == 1:
            if kind != b"IHDR" or length != 13:
                raise _corrupt("the PNG does not start with its IHDR chunk")
            width, height = struct.unpack_from(">II", view, pos + 8)
        if zlib.crc32(view[pos + 4 : end]) != struct.unpack_from(">I", view, end)[0]:
            raise _corrupt(f"the CRC of PNG chunk {kind.decode()} at byte {pos} does not match")
        pos = end + 4
        if kind == b"IEND":
            return Outline(width=width, height=height, parts=chunks.used)


# Pillow reads a GIF's extension blocks before its first image in Python, a call per data
# sub-block, and joins a comment's sub-blocks and comments with ``+=`` (PIL/GifImagePlugin.py
# ``GifImageFile._seek``): time grows with their square. Encoders write an extension or two
# before each image (graphic control, application, comment, XMP), in sub-blocks of 255 bytes.
GIF_MAX_EXTENSIONS = 64
GIF_MAX_EXTENSION_SUB_BLOCKS = 2048
# The image's own sub-blocks are read by Pillow's C decoder; this walk reads each, so their
# number is bounded per byte: at most PARTS_BASE plus one per this many bytes of file.
GIF_SUB_BLOCK_BYTES_EACH = 64


def gif_outline(data: bytes | memoryview) -> Outline:
    """Walk the blocks and data sub-blocks up to the end of the first image, and find the trailer.

    Only the first image is ever decoded (Pillow opens a GIF at frame 0; the job converts that
    frame), so later frames cost nothing but their bytes.

    GIF89a (W3C, "Graphics Interchange Format Version 89a"): a 6-byte header, the Logical Screen
    Descriptor (width and height, little-endian; a flags byte whose top bit announces a global
    color table of 3 x 2^(n+1) bytes), then blocks: 0x21 extensions (a label, then data
    sub-blocks), 0x2C images (a 9-byte descriptor, a local color table, the LZW code size, then
    data sub-blocks), and the 0x3B trailer. Data sub-blocks are a size byte and that many bytes,
    ended by a zero size (sections 15, 16, 17 to 27).
    """
    view = memoryview(data)
    size = len(view)
    if size < 13:
        raise _corrupt("the GIF ends inside its screen descriptor")
    width, height, flags = struct.unpack_from("<HHB", view, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    extensions = _Budget(GIF_MAX_EXTENSIONS, "GIF has more than {limit} extension blocks before its first image")
    extension_sub_blocks = _Budget(
        GIF_MAX_EXTENSION_SUB_BLOCKS, "GIF's extensions before its first image have more than {limit} data sub-blocks"
    )
    image_sub_blocks = _Budget(
        PARTS_BASE + size // GIF_SUB_BLOCK_BYTES_EACH,
        f"GIF's first image has more than {{limit}} data sub-blocks (at most {PARTS_BASE} plus one per "
        f"{GIF_SUB_BLOCK_BYTES_EACH} bytes of file)",
    )
    while True:
        if pos >= size:
            raise _corrupt("the GIF ends before its trailer (3B)")
        introducer = view[pos]
        if introducer == 0x3B:
            break
        if introducer == 0x21:
            extensions.spend()
            pos += 2  # introducer, label
        elif introducer == 0x2C:
            if pos + 10 > size:
                raise _corrupt("the GIF ends inside an image descriptor")
            local = view[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1  # descriptor, table, LZW size
        else:
            raise _corrupt(f"unexpected GIF block {introducer:02X} at byte {pos}")
        while True:  # data sub-blocks
            if pos >= size:
                raise _corrupt("the GIF ends inside a block")
            length = view[pos]
            pos += 1 + length
            if length == 0:
                break
            (extension_sub_blocks if introducer == 0x21 else image_sub_blocks).spend()
        if introducer == 0x2C:
            break
    if view[size - 1] != 0x3B:
        raise _corrupt("no GIF trailer (3B) at the end of the file")
    return Outline(width=width, height=height, parts=extensions.used + 1)


# T.81 Table B.1.
_SOF_HUFFMAN_DCT = {0xC0: "sequential", 0xC1: "sequential", 0xC2: "progressive"}
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SOS, _EOI, _SOI = 0xDA, 0xD9, 0xD8
# The end of an entropy-coded segment: 0xFF followed by a marker code. In the coded data 0xFF
# is followed by a stuffed 0x00 (F.1.2.3) or is a restart marker RST0-7, both part of the scan;
# a run of 0xFF is fill before a marker (B.1.1.2).
_SEGMENT_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class _Frame:
    mode: str  # "sequential", "progressive", or "other" (lossless, arithmetic: no data minimum)
    width: int
    height: int
    blocks: dict[int, int]  # component id -> 8x8 blocks


def _frame(marker: int, body: memoryview) -> _Frame:
    # B.2.2: P, Y, X, Nf, then Ci, Hi|Vi, Tqi for each component.
    if len(body) < 6:
        raise _corrupt("the JPEG frame header is too short")
    _, height, width, count = struct.unpack_from(">BHHB", body, 0)
    if len(body) < 6 + 3 * count or count == 0:
        raise _corrupt("the JPEG frame header is too short")
    if height == 0 or width == 0:
        # A height of 0 defers to a DNL marker, which libjpeg does not support.
        raise _corrupt(f"the JPEG frame declares {width}x{height} pixels")
    components = [struct.unpack_from(">BB", body, 6 + 3 * i) for i in range(count)]
    h_max = max(factors >> 4 for _, factors in components) or 1
    v_max = max(factors & 15 for _, factors in components) or 1
    blocks = {
        ident: math.ceil(math.ceil(width * (factors >> 4) / h_max) / 8)
        * math.ceil(math.ceil(height * (factors & 15) / v_max) / 8)
        for ident, factors in components
    }
    return _Frame(mode=_SOF_HUFFMAN_DCT.get(marker, "other"), width=width, height=height, blocks=blocks)


def _scan_min_bytes(frame: _Frame, blocks: int, spectral_start: int) -> int:
    """The least coded data a scan of ``blocks`` blocks can hold (every Huffman code is >= 1 bit).

    Sequential: a DC difference and an EOB (or AC codes) per block (F.1.2). Progressive
    (G.1.2): a DC scan codes one bit or more per block; an AC scan one EOBn code per 32767 blocks.
    """
    if frame.mode == "sequential":
        bits = 2 * blocks
    elif frame.mode == "progressive":
        bits = blocks if spectral_start == 0 else math.ceil(blocks / JPEG_MAX_EOB_RUN)
    else:
        return 0
    return math.ceil(bits / 8)


def jpeg_outline(data: bytes | memoryview) -> Outline:
    """Walk the marker segments and entropy-coded segments to the first EOI.

    JPEG (ITU-T T.81, B.1.1): markers are 0xFF and a code; SOI, EOI, RST0-7 and TEM stand alone,
    every other marker starts a segment whose 2-byte length counts itself. Each SOS header
    (B.2.3: Ns, the components, Ss, Se, Ah|Al) is followed by coded data up to the next marker.
    """
    view = memoryview(data)
    size = len(view)
    segments = _parts_budget(size, "JPEG has marker segments")
    pos = len(JPEG_SOI)
    scans = passes = 0
    frame: _Frame | None = None
    while True:
        if pos + 2 > size:
            raise _corrupt("the JPEG ends before its end-of-image marker (FFD9)")
        if view[pos] != 0xFF:
            raise _corrupt(f"no JPEG marker at byte {pos}")
        marker = view[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        pos += 2
        segments.spend()
        if marker == _EOI:
            break
        if marker == _SOI or marker == 0x00:
            raise _corrupt(f"unexpected JPEG marker FF{marker:02X} at byte {pos - 2}")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            continue
        if pos + 2 > size:
            raise _corrupt("the JPEG ends inside a marker segment")
        length = struct.unpack_from(">H", view, pos)[0]
        if length < 2 or pos + length > size:
            raise _corrupt(f"the JPEG marker segment FF{marker:02X} at byte {pos - 2} runs past the end")
        body = view[pos + 2 : pos + length]
        pos += length
        if marker in _SOF_HUFFMAN_DCT or marker in _SOF_OTHER:
            if frame is not None:
                raise _corrupt("the JPEG has more than one frame header")
            frame = _frame(marker, body)
        elif marker == _SOS:
            if frame is None:
                raise _corrupt("a JPEG scan comes before the frame header")
            count = body[0] if len(body) else 0
            if count == 0 or len(body) < 1 + 2 * count + 3:
                raise _corrupt("a JPEG scan header is too short")
            ids = [body[1 + 2 * i] for i in range(count)]
            if any(ident not in frame.blocks for ident in ids):
                raise _corrupt("a JPEG scan names a component the frame does not have")
            scans += 1
            blocks = sum(frame.blocks[ident] for ident in ids)
            passes += blocks
            if passes > JPEG_MAX_BLOCK_PASSES * sum(frame.blocks.values()):
                raise InvalidImage(
                    "too_complex",
                    f"the JPEG's first {scans} scans decode its blocks more than {JPEG_MAX_BLOCK_PASSES} times "
                    "over (a progressive JPEG needs about 10 scans)",
                )
            found = _SEGMENT_END.search(view, pos)
            if found is None:
                raise _corrupt("the JPEG ends inside the coded data of a scan")
            coded = found.start() - pos
            needed = _scan_min_bytes(frame, blocks, spectral_start=body[1 + 2 * count])
            if coded < needed:
                raise _corrupt(
                    f"scan {scans} holds {coded} bytes of coded data, less than the {needed} that the "
                    f"{blocks} blocks of a {frame.width}x{frame.height} image need: the data was cut short"
                )
            pos = found.start()
    if frame is None or scans == 0:
        raise _corrupt("the JPEG has no frame or no scan")
    return Outline(width=frame.width, height=frame.height, parts=segments.used, scans=scans)
