"""`make measure` against a real Prometheus (Debian's server, scraping every second) that scrapes a
small hand-written exposition of the runtime's metric names: tasks and requests appear, a worker
restarts (its counters drop to a new start), and the measured file says what happened.

The end-to-end test with the real service's metrics is tests/service/test_measure_service.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stack.model.throughput.measured import load_measured, schema_problems
from stack.tools.measure.cli import main
from stack.tools.measure.collect import instance_types
from stack.config.loader import config_from_stack_file
from tests.infra.support.prometheus import PrometheusServer, prometheus_server
from tests.service.service_processes import free_port

pytestmark = pytest.mark.xdist_group("prometheus")

BUCKETS = (0.1, 0.5, 1.0, float("inf"))


class Exposition:
    """The metrics a web pod and a worker pod would show, set by the test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, float] | None = None  # count, cpu, runtime, wait buckets
        self.requests = 0
        self.web_cpu = 1.0

    def text(self) -> str:
        lines = [
            "# TYPE app_pod_info gauge",
            'app_pod_info{component="web",pod="web-1",node="node-a"} 1',
            'app_pod_info{component="worker",pod="worker-1",node="node-a"} 1',
            "# TYPE app_process_cpu_seconds_total counter",
            f'app_process_cpu_seconds_total{{component="web"}} {self.web_cpu}',
        ]
        if self.requests:
            lines += [
                "# TYPE django_http_requests_total counter",
                f'django_http_requests_total{{method="GET",route="api/jobs/<uuid:job_id>",status="200"}} {self.requests}',
                "# TYPE django_http_request_cpu_seconds histogram",
                *(
                    f'django_http_request_cpu_seconds_bucket{{method="GET",route="api/jobs/<uuid:job_id>",le="{le}"}} '
                    f"{self.requests}"
                    for le in ("0.1", "+Inf")
                ),
                f'django_http_request_cpu_seconds_sum{{method="GET",route="api/jobs/<uuid:job_id>"}} {self.requests * 0.05}',
                f'django_http_request_cpu_seconds_count{{method="GET",route="api/jobs/<uuid:job_id>"}} {self.requests}',
            ]
        if self.tasks is not None:
            t = self.tasks
            labels = 'queue="jobs",task="jobs.compress"'
            for name, total in (("celery_task_cpu_seconds", t["cpu"]), ("celery_task_runtime_seconds", t["runtime"])):
                lines.append(f"# TYPE {name} histogram")
                for le in BUCKETS:
                    bound = "+Inf" if le == float("inf") else str(le)
                    lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {t["count"]}')
                lines += [f"{name}_sum{{{labels}}} {total}", f"{name}_count{{{labels}}} {t['count']}"]
            lines.append("# TYPE celery_task_queue_wait_seconds histogram")
            for le in BUCKETS:
                bound = "+Inf" if le == float("inf") else str(le)
                lines.append(f'celery_task_queue_wait_seconds_bucket{{{labels},le="{bound}"}} {t[f"wait_le_{bound}"]}')
            lines += [
                f"celery_task_queue_wait_seconds_sum{{{labels}}} 1",
                f"celery_task_queue_wait_seconds_count{{{labels}}} {t['count']}",
                "# TYPE celery_tasks_total counter",
                f'celery_tasks_total{{{labels},outcome="succeeded"}} {t["count"]}',
            ]
        return "\n".join(lines) + "\n"


@pytest.fixture
def exposition() -> Iterator[tuple[Exposition, str]]:
    state = Exposition()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                body = state.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _iso(t: datetime) -> str:
    return t.isoformat()


def _tasks(count: int, cpu: float, waits: dict[str, int]) -> dict[str, float]:
    return {"count": count, "cpu": cpu, "runtime": cpu * 1.2, **{f"wait_le_{k}": v for k, v in waits.items()}}


def test_measure_counts_what_happened_in_the_window(
    exposition: tuple[Exposition, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, target = exposition
    with prometheus_server(tmp_path / "prometheus", [target]) as prom:
        _run(prom, state, tmp_path, capsys)


def _run(prom: PrometheusServer, state: Exposition, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prom.wait_up(1)
    prom.wait_scraped(1)
    start = datetime.now(UTC)
    prom.wait_scraped(2)
    quiet_end = datetime.now(UTC)
    # Nothing but the pod info and the web's idle CPU so far: no figure to measure.
    code = main(["--stack", "dev", "--prometheus-url", prom.url, "--since", _iso(start), "--until", _iso(quiet_end),
                 "--out", str(tmp_path / "empty.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert "celery_task_cpu_seconds_count" in err and "django_http_requests_total" in err
    assert _iso(start).replace("+00:00", "Z")[:19] in err
    assert not (tmp_path / "empty.json").exists()

    # 5 tasks (1.25 CPU s) and 7 requests (0.7 CPU s), the counters appearing with their first
    # values already above zero, as a queue's do when its first task is done.
    with state.lock:
        state.tasks = _tasks(5, 1.25, {"0.1": 1, "0.5": 4, "1.0": 5, "+Inf": 5})
        state.requests = 7
        state.web_cpu = 1.7
    prom.wait_scraped(3)
    # The worker restarts and does 2 more tasks (0.5 CPU s): its counters start again from 0.
    with state.lock:
        state.tasks = _tasks(2, 0.5, {"0.1": 0, "0.5": 1, "1.0": 2, "+Inf": 2})
    prom.wait_scraped(3)
    end = datetime.now(UTC)

    out = tmp_path / "measured.json"
    code = main(["--stack", "dev", "--prometheus-url", prom.url, "--since", _iso(start), "--until", _iso(end),
                 "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    measured = load_measured(out)
    assert measured.stack == "dev"
    assert measured.query_url == prom.url
    assert measured.instance_types == instance_types(config_from_stack_file("dev"))
    jobs = measured.queue("jobs")
    assert jobs is not None
    assert (jobs.tasks, jobs.tasks_by_outcome) == (7, {"succeeded": 7})
    assert jobs.cpu_seconds == pytest.approx(1.75)
    assert jobs.cpu_seconds_per_task == pytest.approx(0.25)
    assert jobs.runtime_seconds_per_task == pytest.approx(0.30)
    # 7 waits, cumulative over both runs: 1 under 0.1 s, 5 under 0.5 s, 7 under 1 s. The 95th
    # (rank 6.65) lies in the 0.5-1 s bucket, 1.65 of its 2 observations in, interpolated linearly.
    assert jobs.queue_wait_p95_seconds == pytest.approx(0.5 + 0.5 * 1.65 / 2)
    assert (jobs.component, jobs.instance_type) == ("worker", measured.instance_types["worker"])
    web = measured.web
    assert web is not None
    assert (web.requests, web.requests_by_route) == (7, {"api/jobs/<uuid:job_id>": 7})
    assert web.cpu_seconds_per_request == pytest.approx(0.1)
    assert web.thread_cpu_seconds_per_request_by_route == {"api/jobs/<uuid:job_id>": pytest.approx(0.05)}
    assert [(n.node, n.pods) for n in measured.pods_per_node] == [("node-a", {"web": 1, "worker": 1})]
    assert f"Measured dev from {measured.window.start} to {measured.window.end}" in printed.out
    assert "queue jobs (worker on " in printed.out and "7 tasks, CPU per task 0.25 s" in printed.out
    assert f"Wrote {out}" in printed.out

    # Why the counts are summed from the samples: PromQL's increase() over the same window
    # extrapolates and does not count a series' first value, so it reads neither 7 tasks nor 7
    # requests (https://prometheus.io/docs/prometheus/latest/querying/functions/#increase).
    seconds = round((end - start).total_seconds())
    promql = prom.query(f"sum(increase(celery_tasks_total[{seconds}s]))", end.timestamp())
    requests = prom.query(f"sum(increase(django_http_requests_total[{seconds}s]))", end.timestamp())
    assert float(promql[0]["value"][1]) != pytest.approx(7)  # type: ignore[index]
    assert float(requests[0]["value"][1]) != pytest.approx(7)  # type: ignore[index]


def test_the_written_file_is_refused_when_it_breaks_the_schema(tmp_path: Path) -> None:
    document = {"schema": "django-eks-measured/1", "stack": "dev", "queues": [{"queue": "jobs", "tasks": -1}]}
    problems = schema_problems(document)
    assert any(p.startswith("(root)") and "'window' is a required property" in p for p in problems)
    assert any(p.startswith("queues.0.tasks") for p in problems)
    path = tmp_path / "bad.json"
    path.write_text(__import__("json").dumps(document))
    with pytest.raises(ValueError, match="queues.0.tasks"):
        load_measured(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", "nope"], "unknown stack 'nope'; stack files: dev"),
        (["--stack", "dev", "--since", "yesterday"], "SINCE='yesterday' is neither a duration"),
        (["--stack", "dev", "--since", "10m", "--until", "20m"], "the window is empty"),
    ],
)
def test_bad_input_is_named(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*args, "--prometheus-url", "http://127.0.0.1:9"]) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_query_url_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["--stack", "dev", "--prometheus-url", f"http://127.0.0.1:{port}"]) == 2
    assert f"http://127.0.0.1:{port}/api/v1/query: cannot be reached" in capsys.readouterr().err


def test_the_committed_schema_is_the_models() -> None:
    """schema/measured-results.schema.json is generated: `python -m stack.model.throughput.measured`."""
    from stack.model.throughput.measured import SCHEMA_FILE, json_schema

    assert __import__("json").loads(SCHEMA_FILE.read_text()) == json_schema()


AMP_URL = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123/api/v1/"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No credentials but those the test sets: no profile files, no instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_an_amp_workspace_url_is_signed_for_aps_in_its_region(aws_env: pytest.MonkeyPatch) -> None:
    """AMP's query API takes only SigV4-signed requests, service `aps`
    (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-onboard-query-APIs.html)."""
    from stack.tools.measure.prometheus import PrometheusApi

    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    api = PrometheusApi(AMP_URL)
    assert api.base == AMP_URL and api.signer is not None
    headers = api.signer(api.base + "query", b"query=up", {"Content-Type": "application/x-www-form-urlencoded"})
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/aps/aws4_request" in authorization
    assert "X-Amz-Date" in headers
    # A plain Prometheus (tests, make dev) gets unsigned requests.
    assert PrometheusApi("http://127.0.0.1:9090").signer is None


def test_an_amp_workspace_without_credentials_is_named(aws_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev", "--prometheus-url", AMP_URL]) == 2
    assert "only SigV4-signed requests, and no AWS credentials were found" in capsys.readouterr().err
