"""The runtime's metrics and JSON logs, read back from real processes started as the pods start
them: requests and tasks of a known number, duration and CPU, then every metric of the contract
from the web's and the worker's /metrics, and the log lines of web, worker and beat."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis as redis_client
import requests
from tests.runtime.metrics_site import (
    ThrowawayRedis, cpu_of, free_port, json_lines, port_closed, scrape, wait_for,
)

from django_eks_runtime import metrics
from django_eks_runtime.launch import SERVERS

pytestmark = pytest.mark.xdist_group("runtime-metrics")

NAP_SECONDS = 0.3
COUNTDOWN_SECONDS = 3.0
BURN_CPU_SECONDS = 0.15
"""About what the CPU-bound request and task burn; the rounds are sized on this machine."""


@pytest.fixture(scope="module")
def burn() -> tuple[int, float]:
    """Rounds of the app's CPU work that take about BURN_CPU_SECONDS here, and their CPU seconds."""
    from metricsite.work import burn as work

    rounds = 20_000
    while (spent := cpu_of(work, rounds)) < BURN_CPU_SECONDS:
        rounds *= 2
    return rounds, cpu_of(work, rounds)


def stale_counts(folder: Path, requests_counted: int) -> None:
    """A metrics file as a process of an earlier run left it: `requests_counted` hello requests."""
    code = ("from django_eks_runtime import metrics; "
            f"metrics.HTTP_REQUESTS.labels('GET', 'hello', '200').inc({requests_counted})")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert list(folder.glob("counter_*.db"))


@pytest.mark.parametrize("server", SERVERS)
def test_web_metrics_count_each_request_by_route_across_processes_and_no_probe(app, burn, tmp_path, server):
    rounds, burn_cpu = burn
    folder = tmp_path / "app-metrics"
    folder.mkdir()
    stale_counts(folder, 1000)
    unused = free_port()
    # Two worker processes: a scrape of either answers for both.
    _, url, probes = app.serve(server, env={
        "WEB_PROCESSES": "2", "PROMETHEUS_MULTIPROC_DIR": str(folder), "METRICS_BIND": f"127.0.0.1:{unused}",
        "POD_NAME": "web-7d9-x2", "NODE_NAME": "ip-10-0-1-5", "GUNICORN_ACCESSLOG": ""})

    # Requests on new connections until both processes have answered some.
    hello_ids, pids = [], set()
    while len(pids) < 2 or len(hello_ids) < 4:
        assert len(hello_ids) < 200, f"one process answered every request: {pids}"
        response = requests.get(f"{url}/hello", timeout=10)
        pids.add(response.json()["pid"])
        hello_ids.append(response.headers["X-Request-Id"])
    given = f"client-{uuid.uuid4().hex[:8]}"
    assert requests.get(f"{url}/hello", headers={"X-Request-Id": given}, timeout=10).headers["X-Request-Id"] == given
    traced = requests.get(f"{url}/hello", timeout=10,
                          headers={"X-Amzn-Trace-Id": "Self=1-5e3-aa;Root=1-67891233-abcdef012345678912345678;Sampled=1"})
    assert traced.headers["X-Request-Id"] == "1-67891233-abcdef012345678912345678"
    hello_ids += [given, traced.headers["X-Request-Id"]]
    assert all(len(rid) == 32 for rid in hello_ids[:-2]) and len(set(hello_ids)) == len(hello_ids)
    hellos = len(hello_ids)

    for item in (1, 2, 3):
        assert requests.get(f"{url}/items/{item}", timeout=10).status_code == 200
    assert requests.post(f"{url}/items/4", timeout=10).status_code == 200
    for item in (100, 101):
        assert requests.get(f"{url}/items/{item}", timeout=10).status_code == 404
    missing = [requests.get(f"{url}/nowhere/{n}", timeout=10) for n in range(3)]
    assert {response.status_code for response in missing} == {404}
    for _ in range(2):
        assert requests.get(f"{url}/nap", params={"seconds": NAP_SECONDS}, timeout=10).status_code == 200
        assert requests.get(f"{url}/burn", params={"rounds": rounds}, timeout=30).status_code == 200
    for _ in range(5):  # probes on both ports: never counted
        for base in (url, probes):
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
            assert requests.get(f"{base}/readyz", timeout=10).status_code == 200

    # Several scrapes reach both processes' probe servers (SO_REUSEPORT): each counts all.
    scrapes = [scrape(f"{probes}/metrics") for _ in range(6)]
    for result in scrapes:
        assert result.series("django_http_requests_total") == {
            frozenset({("method", "GET"), ("route", "hello"), ("status", "200")}): hellos,
            frozenset({("method", "GET"), ("route", "items/<int:item_id>"), ("status", "200")}): 3,
            frozenset({("method", "POST"), ("route", "items/<int:item_id>"), ("status", "200")}): 1,
            frozenset({("method", "GET"), ("route", "items/<int:item_id>"), ("status", "404")}): 2,
            frozenset({("method", "GET"), ("route", metrics.UNMATCHED_ROUTE), ("status", "404")}): 3,
            frozenset({("method", "GET"), ("route", "nap"), ("status", "200")}): 2,
            frozenset({("method", "GET"), ("route", "burn"), ("status", "200")}): 2,
        }
    last = scrapes[-1]
    duration, cpu = "django_http_request_duration_seconds", "django_http_request_cpu_seconds"
    assert last.value(f"{duration}_count", method="GET", route="hello") == hellos
    assert last.value(f"{cpu}_count", method="GET", route="items/<int:item_id>") == 5
    # The nap's wall time, not its CPU; the burn's CPU, close to the same work's CPU measured here.
    assert last.value(f"{duration}_sum", method="GET", route="nap") >= 2 * NAP_SECONDS
    assert last.value(f"{cpu}_sum", method="GET", route="nap") < NAP_SECONDS / 2
    per_burn = last.value(f"{cpu}_sum", method="GET", route="burn") / 2
    assert 0.5 * burn_cpu <= per_burn <= 2 * burn_cpu, (per_burn, burn_cpu)
    assert last.value(f"{duration}_sum", method="GET", route="burn") >= 2 * per_burn * 0.9
    # The histograms' buckets are the runtime's one list.
    assert last.bucket(duration, 0.005, method="GET", route="nap") == 0
    assert last.bucket(duration, metrics.BUCKETS[-1], method="GET", route="nap") == 2
    # The processes' CPU, at least all the requests' CPU.
    requests_cpu = last.total(f"{cpu}_sum")
    assert last.value("app_process_cpu_seconds_total", component="web") >= requests_cpu
    assert last.series("app_pod_info") == {
        frozenset({("component", "web"), ("pod", "web-7d9-x2"), ("node", "ip-10-0-1-5")}): 1}
    # The web process imports the Celery app (its views enqueue tasks): no worker metrics server.
    assert port_closed(unused)

    # uWSGI's Python writes sys.stdout to file descriptor 2 (unbit/uwsgi#1601): its lines are on stderr.
    web = app.procs[0]
    lines = list(json_lines(web.log() + web.log_path.with_suffix(".stderr").read_text()))
    hello_lines = [line for line in lines if line.get("logger") == "metricsite.views"]
    assert sorted(line["request_id"] for line in hello_lines) == sorted(hello_ids)
    assert {"timestamp", "level", "logger", "message"} <= set(hello_lines[0])
    not_found = [line for line in lines if str(line.get("message", "")).startswith("Not Found: /nowhere")]
    assert sorted(line["request_id"] for line in not_found) == sorted(r.headers["X-Request-Id"] for r in missing)
    # One access line a request of the app (probes have none), with its id, route and status.
    access = [line for line in lines if line.get("logger") == "django_eks_runtime.access"]
    assert len(access) == sum(last.series("django_http_requests_total").values())
    by_id = {line["request_id"]: line for line in access}
    assert {rid for rid in hello_ids} <= set(by_id)
    assert {(by_id[rid]["route"], by_id[rid]["status"], by_id[rid]["method"]) for rid in hello_ids} == {("hello", 200, "GET")}
    for response in missing:
        line = by_id[response.headers["X-Request-Id"]]
        assert (line["route"], line["status"], line["path"]) == (metrics.UNMATCHED_ROUTE, 404, response.request.path_url)
    burns = [line for line in access if line["route"] == "burn"]
    assert len(burns) == 2 and all(line["cpu_ms"] >= 0.5 * burn_cpu * 1000 for line in burns)


def test_task_metrics_queue_lengths_and_logs_from_the_workers_main_process(app, redis, burn):
    rounds, burn_cpu = burn
    broker = redis_client.Redis.from_url(redis.url(0))
    metrics_port = free_port()
    _, url, _ = app.serve("granian", env={"METRICS_BIND": f"127.0.0.1:{free_port()}"})

    def enqueue(task: str, count: int = 1, *args: object, countdown: float | None = None) -> list[str]:
        response = requests.post(f"{url}/tasks/{task}", json={"args": list(args), "count": count,
                                                              "countdown": countdown}, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()["ids"]

    # Published before any worker runs: they wait at least until it starts.
    enqueue("early", 3)
    published = time.time()
    assert broker.llen("work") == 3
    time.sleep(2.0)
    started = time.time()
    waited = started - published
    worker = app.worker("work,held", env={"METRICS_BIND": f"127.0.0.1:{metrics_port}", "WORKER_CONCURRENCY": "2",
                                 "APP_COMPONENT": "worker-work", "POD_NAME": "worker-5f-abc",
                                 "NODE_NAME": "ip-10-0-2-9"})
    endpoint = f"http://127.0.0.1:{metrics_port}/metrics"

    napped = enqueue("nap", 2, NAP_SECONDS)
    burned = enqueue("burn", 2, rounds)
    enqueue("fail", 2)
    enqueue("flaky", 1)
    enqueue("later", 1, countdown=COUNTDOWN_SECONDS)
    enqueue("crash", 1)
    enqueue("stuck", 1)
    expected = {("early", "succeeded"): 3, ("nap", "succeeded"): 2, ("burn", "succeeded"): 2,
                ("fail", "failed"): 2, ("flaky", "retried"): 1, ("flaky", "succeeded"): 1,
                ("crash", "failed"): 1, ("stuck", "failed"): 1, ("later", "succeeded"): 1}

    def outcomes() -> dict[tuple[str, str], float]:
        return {(dict(labels)["task"], dict(labels)["outcome"]): value
                for labels, value in scrape(endpoint).series("celery_tasks_total").items()}

    wait_for(lambda: outcomes() == expected, timeout=60, what=f"outcomes {expected}")
    result = scrape(endpoint)
    assert {dict(labels)["queue"] for labels in result.series("celery_tasks_total")} == {"work"}
    wait, runtime, cpu = "celery_task_queue_wait_seconds", "celery_task_runtime_seconds", "celery_task_cpu_seconds"
    work = {"queue": "work"}
    # Queue wait: from the publish in the web process to the start; the early ones waited for the
    # worker. The web's header reaches the task as task.request.enqueued_at (worker.py says how).
    assert result.value(f"{wait}_count", **work, task="early") == 3
    assert result.value(f"{wait}_sum", **work, task="early") >= 3 * waited
    assert result.bucket(wait, 1.0, **work, task="early") == 0
    assert result.value(f"{wait}_count", **work, task="flaky") == 2  # the retry is published again
    # A countdown is no wait: counted from its ETA, the later task waited less than its countdown
    # (it reached the worker at once, held in the worker's timer until due).
    assert result.value(f"{wait}_count", **work, task="later") == 1
    # Counted from its publish it would be the whole countdown or more.
    assert result.value(f"{wait}_sum", **work, task="later") < COUNTDOWN_SECONDS
    assert result.value(f"{wait}_sum", **work, task="nap") < result.value(f"{wait}_sum", **work, task="early")
    # Runtime: the nap's sleep; CPU: the burn's, close to the same work measured here.
    assert result.value(f"{runtime}_count", **work, task="nap") == 2
    assert result.value(f"{runtime}_sum", **work, task="nap") >= 2 * NAP_SECONDS
    assert result.value(f"{cpu}_sum", **work, task="nap") < NAP_SECONDS / 2
    per_burn = result.value(f"{cpu}_sum", **work, task="burn") / 2
    assert 0.5 * burn_cpu <= per_burn <= 2 * burn_cpu, (per_burn, burn_cpu)
    assert result.value(f"{runtime}_sum", **work, task="burn") >= 2 * per_burn * 0.9
    assert result.value(f"{runtime}_count", **work, task="fail") == 2
    assert result.value("app_process_cpu_seconds_total", component="worker-work") >= result.total(f"{cpu}_sum")
    assert result.series("app_pod_info") == {
        frozenset({("component", "worker-work"), ("pod", "worker-5f-abc"), ("node", "ip-10-0-2-9")}): 1}

    # Queue length: LLEN of each of the worker's queues, read at the scrape. "held" paused.
    control, node = app_control(redis), [app.node]
    assert control.cancel_consumer("held", destination=node, reply=True, timeout=10), "the worker did not answer"
    enqueue("held", 4)
    # A fetch in flight when the consumer was cancelled puts its message back ("Requeuing
    # undeliverable message ... No consumers", kombu's virtual transport).
    wait_for(lambda: broker.llen("held") == 4, timeout=10, what="4 messages in held")
    lengths = scrape(endpoint).series("celery_queue_length")
    assert lengths == {frozenset({("queue", "held")}): 4, frozenset({("queue", "work")}): broker.llen("work")}
    control.add_consumer("held", destination=node, reply=True, timeout=10)
    wait_for(lambda: scrape(endpoint).value("celery_tasks_total", queue="held", task="held", outcome="succeeded") == 4,
             timeout=30, what="held tasks run")
    assert scrape(endpoint).value("celery_queue_length", queue="held") == broker.llen("held") == 0

    # Logs: the task's own lines carry its id and name; every logging line is JSON.
    lines = list(json_lines(worker.log(), every=True))
    burning = [line for line in lines if str(line.get("message", "")).startswith("burning")]
    assert sorted(line["task_id"] for line in burning) == sorted(burned)
    assert {line["task_name"] for line in burning} == {"burn"}
    printed = [line for line in lines if line.get("message") == f"napping {NAP_SECONDS} s"]  # print()
    assert sorted(line["task_id"] for line in printed) == sorted(napped)
    assert any("ready." in str(line.get("message")) for line in lines)


def app_control(redis: ThrowawayRedis):
    from celery import Celery

    return Celery("control", broker=redis.url(0)).control


def test_beat_logs_json_stamps_its_messages_and_serves_no_metrics(app, redis):
    port = free_port()
    started = time.time()
    beat = app.beat(env={"METRICS_BIND": f"127.0.0.1:{port}"})
    # The tick it sent waits in its queue (no worker), stamped with its publish time. Beat logs
    # "Sending due task" before it publishes: the message may land a moment after the line.
    queued = redis_client.Redis.from_url(redis.url(0))
    message = json.loads(wait_for(lambda: queued.lindex("ticks", -1), timeout=30, what="the tick in its queue"))
    assert started <= message["headers"]["enqueued_at"] <= time.time()
    lines = list(json_lines(beat.log(), every=True))
    assert any(str(line.get("message", "")).startswith("beat: Starting") for line in lines)
    assert any("Sending due task tick" in str(line.get("message", "")) for line in lines)
    assert all({"timestamp", "level", "logger", "message"} <= set(line) for line in lines)
    assert port_closed(port)
