"""The Celery worker's command line, one definition for the image, ``make dev``, the benchmark
and the tests; the infra program renders the same argv (tests/infra compare the two).

- Prefetch 1 and ``-O fair``: a long CPU-bound task never holds a second one hostage.
- No worker heartbeat events, gossip or mingle: nothing here reads them (job state lives in
  PostgreSQL, the autoscaler watches the queue's length), and each is one more broker
  conversation held from the worker's event loop. The worker's event heartbeat in particular
  retries its publish without end while Redis hangs, so the loop (and with it the liveness
  heartbeat, ``config.celery_app.Heartbeat``) would freeze for as long as Redis does.
"""

LOG_LEVEL = "INFO"


def worker_argv(*, concurrency: int = 1, program: str = "celery") -> list[str]:
    return [
        program, "--app", "config", "worker",
        "--concurrency", str(concurrency), "--prefetch-multiplier", "1", "-O", "fair",
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel", LOG_LEVEL,
    ]  # fmt: skip
