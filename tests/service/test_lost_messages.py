"""Messages lost with Redis come back within a pass or two, not after JOBS_REQUEUE_QUEUED_AFTER;
messages that are there are never published twice. Real gunicorn, Celery, reconciler and a
private redis-server that is killed and restarted empty (no persistence), as a failover to a
replica that had not received them does.

Where kombu keeps a message until its acknowledgement: the queue's list, then the
``unacked`` hash (kombu/transport/redis.py: ``QoS.append`` writes the hash when a worker takes
the message; ``_do_restore_message`` puts it back in the list): see service/jobs/broker.py.
"""

import re
import time

import redis
from conftest import encode, photo_like
from service_processes import free_port, wait_for
from test_job_faults import FAST, reconciler, submit, wait_finished

from jobs import broker

# The production threshold for a queued job with no worker starting it: only the lost-message
# check can bring these jobs back within the test.
LOST = {**FAST, "JOBS_REQUEUE_QUEUED_AFTER": "600", "JOBS_LOST_AFTER": "2"}


def test_jobs_whose_messages_died_with_redis_are_published_again_and_run_once(processes):
    port = free_port()
    redis_proc = processes.redis_server(port)
    redis_url = f"redis://127.0.0.1:{port}/0"
    env = {**LOST, "REDIS_URL": redis_url}
    _, url = processes.gunicorn(env=env)
    job_ids = [submit(url, encode(photo_like(160, 120, seed=i))) for i in range(5)]
    rec = reconciler(processes, env)
    client = redis.Redis.from_url(redis_url)
    # No worker yet: the messages wait in the list, where the reconciler finds them, and it
    # publishes none of them again, however many passes it makes.
    def passes() -> list[str]:
        return re.findall(r"reconcile: requeued (\d+)", rec.log())

    time.sleep(float(env["JOBS_LOST_AFTER"]))
    wait_for(lambda: len(passes()) >= 3, timeout=60, what="three reconciler passes")
    assert client.llen(env["CELERY_QUEUE"]) == len(job_ids)
    assert set(passes()) == {"0"}, rec.log()
    client.close()

    redis_proc.popen.kill()  # and it comes back empty
    redis_proc.wait(timeout=10)
    processes.redis_server(port, name="redis-again")
    processes.worker(env=env)
    # Well within JOBS_REQUEUE_QUEUED_AFTER (600 s), which brought them back before.
    bodies = wait_finished(url, job_ids, timeout=60)
    assert {(b["status"], b["attempts"]) for b in bodies.values()} == {("done", 1)}, bodies
    assert "lost by the broker 5" in rec.log()


def test_a_message_is_found_in_the_list_and_in_the_unacknowledged_hash(test_redis, settings):
    # The two places kombu keeps a message, read from a real Redis as the reconciler reads them.
    from config.celery_app import app
    from jobs.tasks import job_compress_task

    test_redis.flushdb()
    settings.CELERY_QUEUE = LOST["CELERY_QUEUE"]
    job_id = "00000000-0000-4000-8000-000000000001"
    with app.connection_for_write() as conn:
        job_compress_task.apply_async((job_id,), connection=conn, queue=settings.CELERY_QUEUE)
    assert job_id in broker.broker_job_ids()
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        message = channel.basic_get(settings.CELERY_QUEUE, no_ack=False)  # in the unacked hash now
        assert message is not None
        assert conn.default_channel.client.llen(settings.CELERY_QUEUE) == 0
        assert job_id in broker.broker_job_ids()
        message.ack()
    assert job_id not in broker.broker_job_ids()
