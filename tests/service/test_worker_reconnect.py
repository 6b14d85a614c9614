"""A worker's liveness survives a broker reconnect: real Celery worker, real redis-server.

Celery 5.6.3 clears the worker's timer when the broker connection drops: in ``asynloop``
(celery/worker/loops.py lines 100-130, the ``except Exception`` branch of the loop)
``hub.reset()`` and ``hub.timer.clear()`` drop every periodic entry, and ``Consumer.start``
(celery/worker/consumer/consumer.py lines 367-371, ``blueprint.restart(self)`` after
``on_connection_error_after_connected``) starts a new loop, which re-registers only what
``register_with_event_loop`` registers (loops.py line 63). A heartbeat timer registered once at the worker's start
never fired again: the probe failed for good about a max age after any Redis blip, and kubelet
restarted healthy workers.
"""

import subprocess
import sys
import time

import requests
from conftest import encode, photo_like
from service_processes import SERVICE_DIR, free_port, wait_for
from test_job_faults import FAST, submit, wait_finished


def heartbeat_probe(path, max_age: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "config.heartbeat", "--max-age", str(max_age), "--file", str(path)],
                          cwd=SERVICE_DIR, capture_output=True, text=True, timeout=60)


def ages(path, seconds: float) -> list[float]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(time.time() - path.stat().st_mtime)
        time.sleep(0.25)
    return samples


def test_heartbeat_goes_on_after_redis_restarts(processes, tmp_path):
    port = free_port()
    redis_proc = processes.redis_server(port)
    env = {**FAST, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "CELERY_HEARTBEAT_INTERVAL": "1"}
    _, url = processes.gunicorn(env=env)
    worker = processes.worker(env=env)
    heartbeat = tmp_path / "worker.heartbeat"
    # Baseline: the idle worker's heartbeat ages on this machine, now.
    before = ages(heartbeat, 4)
    # A max age of a few beats plus what this machine's load adds to one.
    max_age = 5 * float(env["CELERY_HEARTBEAT_INTERVAL"]) + max(before)
    connected = worker.log().count("Connected to redis")

    redis_proc.popen.kill()  # a failover or a restart: the connection drops
    redis_proc.wait(timeout=10)
    time.sleep(3)
    processes.redis_server(port, name="redis-again")
    wait_for(lambda: worker.log().count("Connected to redis") > connected, timeout=60, interval=0.5,
             what="the worker to reconnect")
    # The log line comes before the consumer's steps start again: the file is as old as the
    # outage until the first beat on the new connection, which is where the ages count from.
    reconnected = time.time()
    wait_for(lambda: heartbeat.stat().st_mtime > reconnected, timeout=max_age, interval=0.1,
             what="the first heartbeat on the new connection")
    # Long enough for a heartbeat registered once (and cleared) to go past the max age.
    after = ages(heartbeat, max_age + 3)
    probe = heartbeat_probe(heartbeat, max_age)
    print(f"heartbeat ages before the blip: max {max(before):.1f}s; after the reconnect: max {max(after):.1f}s "
          f"(max age {max_age:.1f}s); probe: {probe.stdout or probe.stderr}")
    assert probe.returncode == 0, probe.stderr
    assert max(after) < max_age, after
    # And the worker still works.
    job_id = submit(url, encode(photo_like(160, 120)))
    assert wait_finished(url, [job_id], timeout=60)[job_id]["status"] == "done"
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
