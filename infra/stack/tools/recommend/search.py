"""Search for the cheapest web and worker pools that serve a load with headroom.

Each workload gets its own pool, as the project's design scales them independently: web (which
also holds the cluster's system pods) and a tainted workers pool. For each pool, headroom means:

* a node's loss: the pool has one node more than its pods need, so the pods of any lost node
  reschedule on the others and the load is still met (N+1); the stack file makes it the pool's
  minSize too, or the Cluster Autoscaler would remove the empty spare;
* zone spread: at least two nodes and two pods per workload, spread over zones;
* the plan's own capacity rules: the pods are packed by the same model (`stack.model.capacity`) as
  the plan's, and the whole stack must plan without capacity errors.

A pod's CPU request is one of the even splits of a node's room after DaemonSets (1, 2, 3, ...
pods per node), never more than it can use (one vCPU per Celery child or gunicorn process), and
at least `MIN_CPU_MILLICORES`. A pod's memory is what the memory model (`stack.config.memory`, the
config's own rule) requires of its shape: a worker's for its concurrency at the pixel limit, a
web pod's for its processes, threads and upload slots. Throughput per pod is
`stack.model.throughput.estimate`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from stack.model.nodes import NodeRoom, node_allocatable, nodes_needed, pods_per_node, room_after_daemonsets
from stack.model.pod_requests import ClusterPods, PodRequests
from stack.config.catalog import InstanceType
from stack.config.memory import web_pod_memory_mib, worker_pod_memory_mib
from stack.model.prices import HOURS_PER_MONTH, PriceBook
from stack.model.throughput.estimate import ResultsSet
from stack.model.throughput.pods import (
    HEADLINE_HTTP_WORKLOAD,
    PerPod,
    WebShape,
    configurable_web_shapes,
    web_rate,
    worker_rate,
)
from stack.model import proxy

MIN_CPU_MILLICORES = 250
"""Smallest CPU request the search gives a pod (a search bound, not a Kubernetes one)."""
MIN_REPLICAS = 2
"""Two pods at least, so that a node's loss never takes a whole workload down."""
MIN_NODES = 2
"""Two nodes at least per pool, in two zones."""
MAX_REPLICAS = 100
"""The config's bound on `replicas`."""
MAX_NODES = 100
"""The config's bound on a pool's `maxSize`."""

Workload = Literal["web", "worker"]


@dataclass(frozen=True)
class PoolChoice:
    """One workload's pool and pods, sized for its load."""

    workload: Workload
    instance_type: str
    cpu_millicores: int
    memory_mib: int
    concurrency: int
    shape: WebShape | None
    per_pod: PerPod
    replicas: int
    max_replicas: int
    nodes: int
    pods_per_node: int
    usd_per_month: float
    load_per_second: float

    @property
    def served_per_second(self) -> float:
        return self.per_pod.per_second * self.replicas

    @property
    def margin(self) -> float:
        """Served at the configured replicas over the load, minus one (0.25 = 25% spare)."""
        if self.load_per_second <= 0:
            return math.inf
        return self.served_per_second / self.load_per_second - 1

    def describe_pods(self) -> str:
        what = f"-c {self.concurrency}" if self.shape is None else self.shape.describe()
        return f"{self.replicas} x ({what}, {self.cpu_millicores}m)"


@dataclass(frozen=True)
class MemoryRule:
    """The stack settings, kept from the base stack, that the pods' memory depends on."""

    max_pixels: int
    """jobs.maxPixels: each Celery child may decode an image this large."""
    uploads_per_web_process: int = 1
    """Upload slots per web server process (jobs.uploadsPerWebPod / web.gunicornWorkers)."""

    def worker_mib(self, concurrency: int) -> int:
        return worker_pod_memory_mib(concurrency=concurrency, max_pixels=self.max_pixels)

    def web_uploads(self, shape: WebShape) -> int:
        """jobs.uploadsPerWebPod for `shape`: the same slots per process, a multiple of them."""
        return self.uploads_per_web_process * shape.processes

    def web_mib(self, shape: WebShape) -> int:
        return web_pod_memory_mib(
            server=shape.server, processes=shape.processes, threads=shape.threads,
            uploads_per_pod=self.web_uploads(shape),
        )  # fmt: skip


def node_usd_per_month(instance: InstanceType, disk_gib: int, prices: PriceBook) -> float:
    return (prices.ec2_hourly(instance.name) * HOURS_PER_MONTH) + disk_gib * prices.service("ebs_gp3")


def cpu_splits(
    room: NodeRoom, most_useful: int, memory_mib: int, *, sidecar: tuple[int, int] = (0, 0)
) -> Iterable[tuple[int, int]]:
    """(pods per node, CPU request) for splitting a node's room evenly between 1, 2, ... pods.

    `sidecar` is (CPU, memory) every pod carries besides the container being sized (the web
    pod's buffering proxy): it takes its share of the node before the split.

    `most_useful` is 1000m per process (Celery child or gunicorn worker): a request above it
    is never used, and one that leaves a process without a share of its own (at most
    `most_useful` - 1000m) is better served by fewer processes, which the search also tries.
    """
    seen: set[int] = set()
    for k in range(1, room.pods + 1):
        cpu = min(most_useful, room.cpu_millicores // k - sidecar[0])
        if cpu < MIN_CPU_MILLICORES or cpu <= most_useful - 1000 or k * (memory_mib + sidecar[1]) > room.memory_mib:
            return
        if cpu in seen:
            continue
        seen.add(cpu)
        yield k, cpu


PROXY = (proxy.CPU_MILLICORES, proxy.MEMORY_MIB)
"""What every web pod's buffering proxy requests besides the app container."""


def web_pod(cpu_millicores: int, memory_mib: int) -> PodRequests:
    """A web pod's requests on its node: the app container and its buffering proxy."""
    return PodRequests("web", cpu_millicores + PROXY[0], memory_mib + PROXY[1])


def _size(
    rate: float,
    per_pod: float,
    room: NodeRoom,
    pod: PodRequests,
    system: Sequence[PodRequests],
) -> tuple[int, int, int] | None:
    """(replicas, nodes, max replicas) for `rate`, or None beyond the config's bounds."""
    replicas = max(MIN_REPLICAS, math.ceil(rate / per_pod - 1e-9))
    if replicas > MAX_REPLICAS:
        return None
    needed = nodes_needed(room, [*system, *([pod] * replicas)])
    nodes = max(MIN_NODES, needed + 1)  # one spare node: a node's loss is absorbed
    if nodes > MAX_NODES:
        return None
    most = replicas
    while most < 2 * MAX_REPLICAS and nodes_needed(room, [*system, *([pod] * (most + 1))]) <= nodes:
        most += 1
    return replicas, nodes, most


def worker_choices(
    catalog: Iterable[InstanceType],
    results: ResultsSet,
    jobs_per_hour: float,
    *,
    memory: MemoryRule,
    disk_gib: int,
    prices: PriceBook,
    cluster: ClusterPods,
) -> list[PoolChoice]:
    """Every worker pool that serves `jobs_per_hour` with headroom, cheapest first."""
    rate = jobs_per_hour / 3600
    out = []
    for instance in catalog:
        loaded, basis = results.for_instance_type(instance.name)
        room = room_after_daemonsets(node_allocatable(instance), cluster.daemonsets)
        node_month = node_usd_per_month(instance, disk_gib, prices)
        for concurrency in sorted({j.concurrency for j in loaded.results.jobs}):
            memory_mib = memory.worker_mib(concurrency)
            for _, cpu in cpu_splits(room, concurrency * 1000, memory_mib):
                per = worker_rate(
                    loaded.results, concurrency=concurrency, cpu_millicores=cpu, basis=basis, label=loaded.label
                )
                if not isinstance(per, PerPod):
                    continue
                pod = PodRequests("worker", cpu, memory_mib)
                sized = _size(rate, per.per_second, room, pod, ())
                if sized is None:
                    continue
                replicas, nodes, most = sized
                out.append(
                    PoolChoice(
                        "worker", instance.name, cpu, memory_mib, concurrency, None, per,
                        replicas, min(most, 200), nodes, pods_per_node(room, pod), nodes * node_month, rate,
                    )
                )
    return sorted(out, key=lambda c: (round(c.usd_per_month, 6), -c.margin))


def web_choices(
    catalog: Iterable[InstanceType],
    results: ResultsSet,
    requests_per_second: float,
    *,
    memory: MemoryRule,
    disk_gib: int,
    prices: PriceBook,
    cluster: ClusterPods,
    alongside: Sequence[PodRequests] = (),
) -> list[PoolChoice]:
    """Every web pool (with the system pods, and the `alongside` pods the base stack keeps
    there) that serves the load with headroom, cheapest first."""
    out = []
    for instance in catalog:
        loaded, basis = results.for_instance_type(instance.name)
        room = room_after_daemonsets(node_allocatable(instance), cluster.daemonsets)
        if not all(room.fits(p) for p in cluster.system):
            continue
        node_month = node_usd_per_month(instance, disk_gib, prices)
        for shape in configurable_web_shapes(loaded.results):
            memory_mib = memory.web_mib(shape)
            for _, cpu in cpu_splits(room, shape.processes * 1000, memory_mib, sidecar=PROXY):
                per = web_rate(
                    loaded.results, shape=shape, cpu_millicores=cpu, basis=basis, label=loaded.label,
                    workload=HEADLINE_HTTP_WORKLOAD,
                )
                if not isinstance(per, PerPod):
                    continue
                pod = web_pod(cpu, memory_mib)
                sized = _size(requests_per_second, per.per_second, room, pod, [*cluster.system, *alongside])
                if sized is None:
                    continue
                replicas, nodes, most = sized
                out.append(
                    PoolChoice(
                        "web", instance.name, cpu, memory_mib, shape.processes, shape, per,
                        replicas, min(most, 200), nodes, pods_per_node(room, pod), nodes * node_month,
                        requests_per_second,
                    )
                )
    return sorted(out, key=lambda c: (round(c.usd_per_month, 6), -c.margin))


def best_per_type(choices: Sequence[PoolChoice], count: int) -> list[PoolChoice]:
    """The cheapest choice of each instance type, the `count` cheapest of those."""
    seen: set[str] = set()
    out = []
    for choice in choices:
        if choice.instance_type not in seen:
            seen.add(choice.instance_type)
            out.append(choice)
        if len(out) == count:
            break
    return out


@dataclass(frozen=True)
class _Option:
    cpu_millicores: int
    memory_mib: int
    concurrency: int
    shape: WebShape | None
    per_pod: PerPod


def _worker_options(instance: InstanceType, results: ResultsSet, room: NodeRoom, memory: MemoryRule) -> list[_Option]:
    loaded, basis = results.for_instance_type(instance.name)
    out = []
    for concurrency in sorted({j.concurrency for j in loaded.results.jobs}):
        memory_mib = memory.worker_mib(concurrency)
        for _, cpu in cpu_splits(room, concurrency * 1000, memory_mib):
            per = worker_rate(loaded.results, concurrency=concurrency, cpu_millicores=cpu, basis=basis, label=loaded.label)
            if isinstance(per, PerPod):
                out.append(_Option(cpu, memory_mib, concurrency, None, per))
    return out


def _web_options(instance: InstanceType, results: ResultsSet, room: NodeRoom, memory: MemoryRule) -> list[_Option]:
    loaded, basis = results.for_instance_type(instance.name)
    out = []
    for shape in configurable_web_shapes(loaded.results):
        memory_mib = memory.web_mib(shape)
        for _, cpu in cpu_splits(room, shape.processes * 1000, memory_mib, sidecar=PROXY):
            per = web_rate(
                loaded.results, shape=shape, cpu_millicores=cpu, basis=basis, label=loaded.label,
                workload=HEADLINE_HTTP_WORKLOAD,
            )
            if isinstance(per, PerPod):
                out.append(_Option(cpu, memory_mib, shape.processes, shape, per))
    return out


def shared_choices(
    catalog: Iterable[InstanceType],
    results: ResultsSet,
    jobs_per_hour: float,
    requests_per_second: float,
    *,
    memory: MemoryRule,
    disk_gib: int,
    prices: PriceBook,
    cluster: ClusterPods,
    alongside: Sequence[PodRequests] = (),
) -> list[tuple[PoolChoice, PoolChoice]]:
    """One pool for web, workers and the system pods: the cheapest (web, worker) of each type.

    Both choices carry the pool's node count and its whole monthly cost. Headroom as for
    separate pools: one spare node, 2+ nodes, 2+ pods of each workload.
    """
    rate = jobs_per_hour / 3600
    out = []
    for instance in catalog:
        room = room_after_daemonsets(node_allocatable(instance), cluster.daemonsets)
        if not all(room.fits(p) for p in cluster.system):
            continue
        node_month = node_usd_per_month(instance, disk_gib, prices)
        best: tuple[float, float, tuple[PoolChoice, PoolChoice]] | None = None
        for web in _web_options(instance, results, room, memory):
            web_replicas = max(MIN_REPLICAS, math.ceil(requests_per_second / web.per_pod.per_second - 1e-9))
            web_requests = web_pod(web.cpu_millicores, web.memory_mib)
            for worker in _worker_options(instance, results, room, memory):
                worker_replicas = max(MIN_REPLICAS, math.ceil(rate / worker.per_pod.per_second - 1e-9))
                if max(web_replicas, worker_replicas) > MAX_REPLICAS:
                    continue
                worker_pod = PodRequests("worker", worker.cpu_millicores, worker.memory_mib)
                pods = [*cluster.system, *alongside, *[web_requests] * web_replicas, *[worker_pod] * worker_replicas]
                nodes = max(MIN_NODES, nodes_needed(room, pods) + 1)
                if nodes > MAX_NODES:
                    continue
                cost = nodes * node_month
                margin = min(
                    web.per_pod.per_second * web_replicas / requests_per_second - 1 if requests_per_second else math.inf,
                    worker.per_pod.per_second * worker_replicas / rate - 1 if rate else math.inf,
                )
                if best is not None and (round(cost, 6), -margin) >= (round(best[0], 6), -best[1]):
                    continue
                web_max, worker_max = _grow_together(
                    room, web_requests, web_replicas, worker_pod, worker_replicas, nodes, cluster.system, alongside
                )
                pair = (
                    PoolChoice(
                        "web", instance.name, web.cpu_millicores, web.memory_mib, web.concurrency, web.shape,
                        web.per_pod, web_replicas, web_max, nodes, pods_per_node(room, web_requests), cost,
                        requests_per_second,
                    ),
                    PoolChoice(
                        "worker", instance.name, worker.cpu_millicores, worker.memory_mib, worker.concurrency, None,
                        worker.per_pod, worker_replicas, worker_max, nodes, pods_per_node(room, worker_pod), cost,
                        rate,
                    ),
                )
                best = (cost, margin, pair)
        if best is not None:
            out.append(best)
    return [pair for _, _, pair in sorted(out, key=lambda b: (round(b[0], 6), -b[1]))]


def _grow_together(
    room: NodeRoom,
    web: PodRequests,
    web_replicas: int,
    worker: PodRequests,
    worker_replicas: int,
    nodes: int,
    system: Sequence[PodRequests],
    alongside: Sequence[PodRequests] = (),
) -> tuple[int, int]:
    """Autoscaling maxima for a shared pool: both workloads grown in turn while all fit `nodes`."""
    most = {"web": web_replicas, "worker": worker_replicas}
    pods = {"web": web, "worker": worker}
    grown = True
    while grown:
        grown = False
        for name in ("web", "worker"):
            trial = dict(most, **{name: most[name] + 1})
            if trial[name] > 200:
                continue
            packed = [*system, *alongside, *[pods["web"]] * trial["web"], *[pods["worker"]] * trial["worker"]]
            if nodes_needed(room, packed) <= nodes:
                most = trial
                grown = True
    return most["web"], most["worker"]
