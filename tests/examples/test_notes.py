"""examples/notes/ end to end: the web behind the runtime's launcher on each server, a worker per
queue, beat, the probes and SIGTERM in the middle of a task, against real PostgreSQL and Redis."""

import signal
import subprocess
import sys
import time

import pytest
import redis
import requests
from tests.examples.notes_app import EXAMPLE_DIR, ThrowawayPostgres, app_processes, create_database, query, wait_for
from django_eks_runtime.launch import SERVERS

pytestmark = pytest.mark.xdist_group("examples-notes")


def post_note(url: str, text: str, **extra: object) -> int:
    response = requests.post(f"{url}/api/notes", json={"text": text, **extra}, timeout=10)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def note_row(servers, note_id: int, columns: str) -> tuple:
    (row,) = query(servers, f"SELECT {columns} FROM notes_note WHERE id = %s", note_id)
    return row


@pytest.mark.parametrize("server", SERVERS)
def test_the_api_answers_on_each_web_server_and_its_task_runs(app, migrated, server):
    app.queue_worker("text")
    _, url, probes = app.serve(server)
    note_id = post_note(url, "three short words")
    wait_for(lambda: note_row(migrated, note_id, "words")[0] is not None, timeout=30, what="words counted")
    note = requests.get(f"{url}/api/notes/{note_id}", timeout=10).json()
    assert note["words"] == 3 and note["counted_by"].startswith("text@")
    # Django's own errors answer JSON (django_eks_runtime.errors), not its HTML pages.
    refused = requests.get(f"{url}/api/notes/{note_id}", headers={"Host": "elsewhere.example"}, timeout=10)
    assert (refused.status_code, refused.json()["error"]) == (400, "disallowed_host")
    missing = requests.get(f"{url}/nowhere", timeout=10)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    # The probes on both ports; Host: a pod IP, which ALLOWED_HOSTS does not name.
    for base in (url, probes):
        ready = requests.get(f"{base}/readyz", headers={"Host": "10.0.0.1"}, timeout=10)
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_each_task_runs_on_its_queues_worker_only(app, migrated, tmp_path):
    app.queue_worker("text")
    _, url, _ = app.serve("uwsgi")
    archived = post_note(url, "to be archived", archive_after=0)
    wait_for(lambda: note_row(migrated, archived, "words")[0] is not None, timeout=30, what="words counted")
    # A later note counted too: the text worker has taken every message after the archive one,
    # which waits in its own queue for a worker of that queue.
    later = post_note(url, "later")
    wait_for(lambda: note_row(migrated, later, "words")[0] is not None, timeout=30, what="later note counted")
    broker = redis.Redis.from_url(app.base_env["REDIS_URL"])
    assert broker.llen("archive") == 1
    assert note_row(migrated, archived, "archived")[0] is None

    app.queue_worker("archive")
    wait_for(lambda: note_row(migrated, archived, "archived")[0] is not None, timeout=30, what="note archived")
    counted_by, archived_by = note_row(migrated, archived, "counted_by, archived_by")
    assert counted_by.startswith("text@") and archived_by.startswith("archive@")
    assert broker.llen("archive") == 0

    # Each worker's liveness probe, as its pod runs it.
    for queues in ("text", "archive"):
        check = subprocess.run(
            [sys.executable, "-m", "django_eks_runtime.heartbeat", "--max-age", "30",
             "--file", str(tmp_path / f"{queues}.heartbeat")],
            cwd=EXAMPLE_DIR, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr


def test_beat_fires_the_periodic_task_once_per_period(app, migrated):
    period = 2.0
    env = {"NOTES_TICK_SECONDS": str(period)}
    query(migrated, "DELETE FROM notes_tick RETURNING id")
    app.queue_worker("text", env=env)
    app.beat(env=env)
    wait_for(lambda: query(migrated, "SELECT count(*) FROM notes_tick")[0][0] >= 5, timeout=60, interval=0.5,
             what="five ticks")
    times = [row[0].timestamp() for row in query(migrated, "SELECT at FROM notes_tick ORDER BY at")]
    # Once per period: counted from the first tick (the run's own start and delay), each tick
    # falls in the next period's slot; a doubled tick shares a slot, a skipped one leaves a hole.
    slots = [round((t - times[0]) / period) for t in times]
    assert slots == list(range(len(times))), [round(t - times[0], 2) for t in times]


def test_readiness_fails_while_the_database_is_down_and_liveness_does_not(migrated, tmp_path):
    own = ThrowawayPostgres()  # stopped by this test: the module's servers stay up for the others
    own.start()
    try:
        create_database(own)
        app = app_processes((own, migrated[1]), tmp_path)
        try:
            app.migrate()
            _, url, probes = app.serve("uwsgi")
            assert requests.get(f"{probes}/readyz", timeout=10).status_code == 200
            own.executor.stop()
            down = requests.get(f"{probes}/readyz", timeout=20)
            assert down.status_code == 503
            checks = down.json()["checks"]
            assert checks["database"].startswith("unavailable") and checks["redis"] == "ok"
            assert requests.get(f"{probes}/healthz", timeout=10).status_code == 200
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        finally:
            app.stop_all()
    finally:
        own.stop()


def test_sigterm_in_the_middle_of_a_task_lets_it_finish(app, migrated):
    worker = app.queue_worker("archive")
    _, url, _ = app.serve("uwsgi")
    note_id = post_note(url, "archived slowly", archive_after=4)
    wait_for(lambda: note_row(migrated, note_id, "archive_started")[0] is not None, timeout=30, what="task started")
    signalled = time.time()
    worker.popen.send_signal(signal.SIGTERM)  # the launcher exec'd Celery: this is its main process
    assert worker.wait(timeout=60) == 0
    archived, archived_by = note_row(migrated, note_id, "archived, archived_by")
    assert archived is not None and archived.timestamp() > signalled and archived_by.startswith("archive@")
    # Finished, not handed back: nothing of it is left in the queue for another worker.
    assert redis.Redis.from_url(app.base_env["REDIS_URL"]).llen("archive") == 0
