"""CPU work of a known size, run by a view, by a task and by the test (its baseline)."""

import hashlib


def burn(rounds: int) -> None:
    digest = b"metrics"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
