"""Time the compression job on a 1600x1200 photo-like image.

    uv run --package django-eks-service python service/benchmarks/compress.py [--runs 5]

Measures jobs.imaging.image_recompress, the CPU-bound part of a job, with the
default settings (max dimension 1280, WebP quality 80), on one core. Use the
figure to size worker replicas: one `--concurrency 1` worker finishes about
1 / (job time) jobs per second.
"""

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.imaging import image_recompress  # noqa: E402


def photo_like(width: int, height: int) -> Image.Image:
    """Smooth structure plus sensor-like noise: compresses like a photograph, unlike flat colour."""
    noise = Image.effect_noise((width, height), 40).convert("L")
    gradient = Image.linear_gradient("L").resize((width, height))
    fractal = Image.effect_mandelbrot((width, height), (-2.0, -1.2, 0.8, 1.2), 60)
    return Image.merge("RGB", (gradient, fractal, noise))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--format", default="JPEG", choices=["JPEG", "PNG"], help="input encoding")
    args = parser.parse_args()

    buffer = io.BytesIO()
    photo_like(1600, 1200).save(buffer, format=args.format, quality=92)
    data = buffer.getvalue()
    timings = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = image_recompress(data=data, max_dimension=1280, quality=80)
        timings.append(time.perf_counter() - start)
    print(f"input: 1600x1200 {args.format}, {len(data)} bytes")
    print(f"output: {result.width}x{result.height} WebP, {len(result.data)} bytes")
    print(
        f"job time over {args.runs} runs: median {statistics.median(timings) * 1000:.0f} ms, "
        f"min {min(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
