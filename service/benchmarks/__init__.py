"""The service's benchmark: the real service in pod shapes, and the load generator for a deployed stack.

    python -m benchmarks run [--fast] [--shapes FILE] [--out PATH|-] [--instance-type TYPE]
    python -m benchmarks load --url URL [--duration SECONDS] [--rate PER_SECOND]

Run from the `service/` directory (the image's working directory).
"""
