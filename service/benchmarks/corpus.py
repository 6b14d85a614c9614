"""The fixed image corpus the job workload submits: generated, so every run compresses the same bytes."""

import io
import random
from functools import cache

from PIL import Image

# Photo-sized inputs, as a phone or camera uploads them; the job resizes them to 1280 px.
CORPUS_SIZES = ((1600, 1200), (1200, 1600), (2000, 1500), (1600, 1200), (1280, 960), (1800, 1350))
CORPUS_QUALITY = 92


def photo_like(width: int, height: int, *, seed: int) -> Image.Image:
    """Smooth structure plus seeded sensor-like noise: compresses like a photograph, the same every run."""
    noise = Image.frombytes("L", (width, height), random.Random(seed).randbytes(width * height))
    noise = Image.blend(noise, Image.new("L", (width, height), 128), 0.7)
    gradient = Image.linear_gradient("L").resize((width, height))
    fractal = Image.effect_mandelbrot((width, height), (-2.0 + seed * 0.05, -1.2, 0.8, 1.2), 60)
    return Image.merge("RGB", (gradient, fractal, noise))


@cache
def corpus() -> tuple[bytes, ...]:
    """The JPEG files of the corpus, in a fixed order."""
    files = []
    for seed, (width, height) in enumerate(CORPUS_SIZES):
        out = io.BytesIO()
        photo_like(width, height, seed=seed).save(out, format="JPEG", quality=CORPUS_QUALITY)
        files.append(out.getvalue())
    return tuple(files)
