"""The benchmark results file: its model, how to read it, and which one the plan uses.

The file is written by `python -m benchmarks run` (service/benchmarks, `make bench`) and
committed as `service/benchmarks/results/<UTC timestamp>-<hostname>.json`. The model below is
the contract between writer and reader; a file that does not match it is refused with every
problem named by its path in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA = "django-eks-bench/2"
SCHEMAS = ("django-eks-bench/1", SCHEMA)
"""The versions this reader takes: /2 adds each job shape's whole-path limit and CPU efficiency."""
REPO_ROOT = Path(__file__).resolve().parents[4]
RESULTS_DIR = REPO_ROOT / "service" / "benchmarks" / "results"

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class StrictModel(BaseModel):
    """A results file's object: no field it does not define, immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Machine(StrictModel):
    hostname: str
    cpu_model: str
    cores: int = Field(ge=1)
    memory_mib: int = Field(ge=1)
    instance_type: str | None = None
    loadavg_at_start: list[float] = Field(default_factory=list)


class Run(StrictModel):
    started_at: str
    duration_s: NonNegative
    mode: str
    machine: Machine
    versions: dict[str, str | None] = Field(default_factory=dict)  # None: not installed


class Latency(StrictModel):
    p50: NonNegative
    p95: NonNegative | None = None
    p99: NonNegative | None = None


class JobShape(StrictModel):
    """A burst of compression jobs through `pods` worker pods of `concurrency` each."""

    shape: str
    pods: int = Field(ge=1)
    concurrency: int = Field(ge=1)
    cpus_per_pod: Positive
    jobs: int = Field(ge=1)
    jobs_per_s: Positive
    cpu_s_per_job: Positive
    limit_jobs_per_s: Positive
    ratio: Positive
    # From /2: the limit of every process a job takes CPU in (worker, web, database, broker, load
    # generator) on the machine's cores, the ratio to it, and compression CPU / worker CPU per job.
    limit_path_jobs_per_s: Positive | None = None
    ratio_path: Positive | None = None
    cpu_efficiency: Positive | None = None
    submit_to_done_ms: Latency
    time_per_job_ms: dict[str, float | None] = Field(default_factory=dict)


class HttpShape(StrictModel):
    """Requests at fixed concurrency against one web pod of `processes` x `threads`."""

    shape: str
    server: str
    worker_class: str
    processes: int = Field(ge=1)
    threads: int = Field(ge=1)
    cpus: Positive
    workload: Literal["io", "db"]
    concurrency: int = Field(ge=1)
    requests: int = Field(ge=1)
    rps: Positive
    latency_ms: Latency
    errors: int = Field(ge=0)
    cpu_ms_per_request: Positive
    limit_rps_threads: Positive
    limit_rps_cpu: Positive
    ratio: Positive
    bound: str


class BenchResults(StrictModel):
    schema_: Literal["django-eks-bench/1", "django-eks-bench/2"] = Field(alias="schema")
    run: Run
    jobs: list[JobShape] = Field(default_factory=list)
    http: list[HttpShape] = Field(default_factory=list)

    @property
    def instance_type(self) -> str | None:
        return self.run.machine.instance_type


class ResultsError(ValueError):
    """A results file is missing, not JSON, or does not match the contract."""


class LoadedResults:
    """One validated results file and where it came from."""

    def __init__(self, path: Path, results: BenchResults, note: str = "") -> None:
        self.path = path
        self.results = results
        self.note = note
        """What replaced the file's own figures (a stack's measured CPU per task), if anything."""

    @property
    def label(self) -> str:
        try:
            name = str(self.path.resolve().relative_to(REPO_ROOT))
        except ValueError:
            name = str(self.path)
        return f"{name} ({self.note})" if self.note else name

    @property
    def instance_type(self) -> str | None:
        return self.results.instance_type


def read_json(path: Path, what: str, error: type[ValueError]) -> Any:
    """The JSON document in `path`; `error` naming `what` and the file when it cannot be read or
    is not JSON. The one reader of the results files (benchmark and measured)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise error(f"{what} {path}: cannot be read ({e.strerror or e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} {path}: not JSON ({e})") from None


def load_results(path: Path) -> LoadedResults:
    """The validated results in `path`; ResultsError naming the file and each bad field."""
    document = read_json(path, "results file", ResultsError)
    if isinstance(document, dict) and document.get("schema") not in (None, *SCHEMAS):
        raise ResultsError(
            f"results file {path}: schema {document.get('schema')!r} is not one of {', '.join(map(repr, SCHEMAS))}, "
            "the versions this plan reads"
        )
    try:
        results = BenchResults.model_validate(document)
    except ValidationError as e:
        problems = "\n".join(
            f"  - {'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['msg']}" for item in e.errors()
        )
        raise ResultsError(f"results file {path} does not match {SCHEMA}:\n{problems}") from None
    return LoadedResults(path, results)


def committed_results(directory: Path = RESULTS_DIR) -> list[Path]:
    """Results files in `directory`, oldest first.

    Their names begin with the UTC timestamp of the run, so name order is time order (file
    modification times are whatever the checkout made them).
    """
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.json"), key=lambda p: p.name)


def default_results(directory: Path = RESULTS_DIR) -> list[Path]:
    """The files the plan uses when none is named: the newest run of each machine kind.

    The newest run without an instance type (a laptop or CI machine) gives the per-CPU figures
    every pool is estimated from; the newest run on each EC2 type (the benchmark Job on a node
    pool) replaces that estimate for pools of that type.
    """
    newest: dict[str | None, Path] = {}
    for path in committed_results(directory):
        try:
            kind = load_results(path).instance_type
        except ResultsError:
            kind = None  # reported when the plan loads it
        newest[kind] = path
    return sorted(newest.values(), key=lambda p: p.name)
