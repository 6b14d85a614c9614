"""Which jobs have a message in the broker: for the reconciler, to find messages Redis lost.

Celery's Redis transport (kombu) keeps a task message in one of two places until its
acknowledgement: the queue's list, from which a worker takes it with BRPOP, then the
``unacked`` hash, where ``QoS.append`` puts it as soon as the worker has it
(kombu/transport/redis.py: ``QoS.append``, ``Channel._brpop_read``), and from which
``restore_visible`` and ``_do_restore_message`` move it back to the list in one transaction.
A message for a job queued in PostgreSQL is in one of them, except for the instant between a
BRPOP and its ``hset`` (a job found missing then is published twice; the claim in
``jobs.services.job_compress`` makes the second message wait for the first's lease).
A Redis restart without persistence, or a failover to a replica that had not yet received
them, loses both.
"""

import base64
import json
import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# Messages read per LRANGE call: a long backlog is read in slices, not in one reply.
SCAN_SLICE = 1000


def bounded(timeout: float) -> dict[str, Any]:
    """Options of a broker connection of its own whose every call gives up after ``timeout``
    seconds: the shared pool's sockets use the worker's long broker timeouts."""
    return {"connect_timeout": timeout,
            "transport_options": {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                  "health_check_interval": 0, "retry_on_timeout": False}}


class BrokerUnavailable(Exception):
    """Redis did not answer the scan; the reconciler leaves the lost-message check to the next pass."""


def _job_id(raw: Any) -> str | None:
    """The job id a kombu message (its JSON envelope) carries as the task's first argument."""
    try:
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _ = json.loads(body)
        job_id = args[0] if args else kwargs.get("job_id")
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return str(job_id) if job_id is not None else None


def broker_job_ids() -> set[str]:
    """Ids of the jobs with a message in the jobs queue's list or in the unacknowledged hash.

    Read in that order, the order a message moves in: one taken from the list after the
    list was read is in the hash when the hash is read. Raises ``BrokerUnavailable``.
    """
    from config.celery_app import app

    try:
        with app.connection_for_read(**bounded(settings.REDIS_SOCKET_TIMEOUT)) as conn:
            channel: Any = conn.default_channel
            client = channel.client
            ids: set[str] = set()
            for step in channel.priority_steps:
                key = channel._q_for_pri(settings.CELERY_QUEUE, step)
                start = 0
                while True:
                    batch = client.lrange(key, start, start + SCAN_SLICE - 1)
                    ids.update(filter(None, map(_job_id, batch)))
                    if len(batch) < SCAN_SLICE:
                        break
                    start += SCAN_SLICE
            for held in client.hvals(channel.unacked_key):
                try:
                    message = json.loads(held)[0]
                except (ValueError, IndexError, TypeError):
                    continue
                job_id = _job_id(json.dumps(message))
                if job_id:
                    ids.add(job_id)
            return ids
    except Exception as exc:  # noqa: BLE001 - kombu and redis-py raise many types for one outage
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
