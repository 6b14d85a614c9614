"""What each pod asks the scheduler for: the DaemonSets on every node, the cluster's system pods,
the reconciler, and the app's pods (web, each worker Deployment, beat, the cron jobs); and the
pool the system pods are counted on.

Pure data and functions over `StackConfig`; every request of a pod we do not build names its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stack.config.model import ObservabilityConfig, StackConfig
from stack.config.names import BEAT, CRON
from stack.config.workers import worker_deployments
from stack.model import proxy


@dataclass(frozen=True)
class PodRequests:
    """What one pod asks the scheduler for."""

    name: str
    cpu_millicores: int
    memory_mib: int
    source: str = ""


# Requests of the add-ons on every node, as shipped by default. A container without requests
# asks for nothing, but its pod still takes a slot of the node's max pods (hostNetwork pods too:
# kubelet counts every pod).
DAEMONSET_PODS: tuple[PodRequests, ...] = (
    PodRequests(
        "aws-node (vpc-cni)",
        cpu_millicores=50,
        memory_mib=0,
        source="aws/amazon-vpc-cni-k8s config/master/aws-k8s-cni.yaml @f3efb24 (v1.14.0): "
        "containers aws-node 25m + aws-eks-nodeagent 25m CPU, no memory request; "
        "chart values.yaml resources.requests.cpu 25m",
    ),
    PodRequests(
        "kube-proxy",
        cpu_millicores=100,
        memory_mib=0,
        source="EKS kube-proxy add-on DaemonSet as dumped in eksctl-io/eksctl "
        "pkg/addons/default/testdata/sample-1.25.json @16f64c8: requests cpu 100m",
    ),
    PodRequests(
        "eks-pod-identity-agent",
        cpu_millicores=0,
        memory_mib=0,
        source="aws/eks-pod-identity-agent charts/eks-pod-identity-agent/values.yaml @00bc058: "
        "resources: {} (no requests)",
    ),
)

# The EKS add-on amazon-cloudwatch-observability (`observability.enabled`, the default): the
# CloudWatch agent and Fluent Bit run as DaemonSets on every Linux node (the chart's default
# tolerations `operator: Exists` let them onto every pool, tainted or not); its operator is one
# Deployment, counted with the system pods. The chart's DCGM exporter and Neuron monitor select
# GPU and Inferentia/Trainium instance types only, none of which the catalog holds.
CLOUDWATCH_CHART = "aws-observability/helm-charts charts/amazon-cloudwatch-observability/values.yaml @71a298f (chart 6.4.0)"
OBSERVABILITY_DAEMONSET_PODS: tuple[PodRequests, ...] = (
    PodRequests(
        "cloudwatch-agent",
        cpu_millicores=250,
        memory_mib=128,
        source=f"{CLOUDWATCH_CHART}: agent.resources.requests cpu 250m, memory 128Mi (agent.mode daemonset)",
    ),
    PodRequests(
        "fluent-bit",
        cpu_millicores=50,
        memory_mib=25,
        source=f"{CLOUDWATCH_CHART}: containerLogs.fluentBit.resources.requests cpu 50m, memory 25Mi",
    ),
)
OBSERVABILITY_SYSTEM_PODS: tuple[PodRequests, ...] = (
    PodRequests(
        "amazon-cloudwatch-observability-controller-manager",
        cpu_millicores=100,
        memory_mib=64,
        source=f"{CLOUDWATCH_CHART}: manager.resources.requests cpu 100m, memory 64Mi (replicaCount 1)",
    ),
)

RECONCILER_POD = PodRequests(
    "job-reconciler",
    cpu_millicores=100,
    memory_mib=256,
    source="stack.workloads.reconciler: the CronJob's pod, one at a time (concurrencyPolicy Forbid); "
    "Django plus one query's worth of rows (ids and states only, never image data)",
)
"""Ours, but placed like the system pods: on the worker pool it would hold a node every minute
and keep a pool whose workers scale to zero from ever having zero nodes."""


# Cluster-wide pods without tolerations for our taints: they run on a pool that accepts them.
SYSTEM_PODS: tuple[PodRequests, ...] = (
    *(
        PodRequests(
            f"coredns-{i}",
            cpu_millicores=100,
            memory_mib=70,
            source="EKS coredns add-on Deployment (2 replicas) in eksctl-io/eksctl "
            "pkg/addons/default/testdata/sample-1.25.json @16f64c8: requests cpu 100m, memory 70Mi",
        )
        for i in (1, 2)
    ),
    PodRequests(
        "metrics-server",
        cpu_millicores=100,
        memory_mib=200,
        source="kubernetes-sigs/metrics-server charts/metrics-server/values.yaml @026af89: "
        "requests cpu 100m, memory 200Mi",
    ),
    *(
        PodRequests(
            f"aws-load-balancer-controller-{i}",
            cpu_millicores=0,
            memory_mib=0,
            source="kubernetes-sigs/aws-load-balancer-controller "
            "helm/aws-load-balancer-controller/values.yaml @0079377: replicaCount 2, resources: {}",
        )
        for i in (1, 2)
    ),
    *(
        PodRequests(
            name,
            cpu_millicores=100,
            memory_mib=100,
            source="kedacore/charts keda/values.yaml (chart 2.20.2): resources.operator, "
            ".metricServer and .webhooks requests cpu 100m, memory 100Mi; replicas as set in "
            "stack.addons.keda (operator 2, metrics server 1, webhooks 1)",
        )
        for name in ("keda-operator-1", "keda-operator-2", "keda-metrics-server", "keda-webhooks")
    ),
    PodRequests(
        "cluster-autoscaler",
        cpu_millicores=100,
        memory_mib=600,
        source="requests set in stack.addons.cluster_autoscaler (the upstream example "
        "Deployment's: cpu 100m, memory 600Mi)",
    ),
    RECONCILER_POD,
)

@dataclass(frozen=True)
class ClusterPods:
    """The pods that are not the app's: on every node (DaemonSets) and on the system pool."""

    daemonsets: tuple[PodRequests, ...]
    system: tuple[PodRequests, ...]


BASE_CLUSTER_PODS = ClusterPods(DAEMONSET_PODS, SYSTEM_PODS)
"""A cluster without the observability add-on (`observability.enabled: false`)."""

OBSERVED_CLUSTER_PODS = ClusterPods(
    (*DAEMONSET_PODS, *OBSERVABILITY_DAEMONSET_PODS), (*SYSTEM_PODS, *OBSERVABILITY_SYSTEM_PODS)
)
"""A cluster with the observability add-on (the default)."""


def cluster_pods(observability: ObservabilityConfig) -> ClusterPods:
    """The DaemonSets and system pods a stack's cluster runs besides the app."""
    return OBSERVED_CLUSTER_PODS if observability.enabled else BASE_CLUSTER_PODS


Workload = Literal["web", "worker"]
WORKLOADS: tuple[Workload, ...] = ("web", "worker")


@dataclass(frozen=True)
class WorkloadShape:
    """The pods of one Deployment or singleton of the app, as capacity and cost see them."""

    name: str
    """Its Kubernetes name: `web`, `worker`, `worker-<key>`, `beat` or `cron-<key>`."""
    key: str
    """Its config path: `web`, `worker`, `workers.<key>`, `beat` or `cronJobs.<key>`."""
    node_pool: str
    pod: PodRequests
    replicas: int
    min_replicas: int
    max_replicas: int


def system_pool(config: StackConfig) -> str:
    """The pool we count CoreDNS, metrics-server and the load balancer controller against.

    The scheduler may spread them over every pool without a NoSchedule/NoExecute taint; the
    model puts them all on one, which is conservative for that pool: the web pool when it
    accepts them, otherwise the first such pool in the stack file's order.
    """
    pools = config.node_pools
    web_pool = pools.get(config.web.node_pool)
    if web_pool is not None and web_pool.schedules_system_pods:
        return config.web.node_pool
    for name, pool in pools.items():
        if pool.schedules_system_pods:
            return name
    raise ValueError("no node pool accepts system pods (every pool has a NoSchedule/NoExecute taint)")


def beat_pool(config: StackConfig) -> str:
    """The beat pod's pool: its own `nodePool`, else the system pods' (which always has a node)."""
    return (config.beat.node_pool if config.beat else None) or system_pool(config)


def cron_job_pool(config: StackConfig, key: str) -> str:
    """A cron job's pool: its own `nodePool`, else the system pods' (as the reconciler's)."""
    return config.cron_jobs[key].node_pool or system_pool(config)


def workload_pod(config: StackConfig, workload: Workload) -> PodRequests:
    if workload == "web":
        # The web pod is the app container plus its buffering proxy (stack/workloads/proxy.py).
        web = config.web
        return PodRequests(workload, web.cpu_millicores + proxy.CPU_MILLICORES, web.memory_mib + proxy.MEMORY_MIB)
    return PodRequests(workload, config.worker.cpu_millicores, config.worker.memory_mib)


def workload_shapes(config: StackConfig) -> list[WorkloadShape]:
    """The app's pods: web, each worker Deployment, beat and each cron job (one pod each, counted
    as always there, like the reconciler: a run may fall at any time)."""
    web = config.web
    shapes = [
        WorkloadShape(
            "web", "web", web.node_pool, workload_pod(config, "web"),
            web.replicas, web.autoscaling.min_replicas, web.autoscaling.max_replicas,
        ),
        *(
            WorkloadShape(
                d.name, d.key, d.spec.node_pool,
                PodRequests(d.name, d.spec.cpu_millicores, d.spec.memory_mib),
                d.spec.replicas, d.spec.autoscaling.min_replicas, d.spec.autoscaling.max_replicas,
            )
            for d in worker_deployments(config)
        ),
    ]  # fmt: skip
    if config.beat is not None:
        pod = PodRequests(BEAT, config.beat.cpu_millicores, config.beat.memory_mib)
        shapes.append(WorkloadShape(BEAT, "beat", beat_pool(config), pod, 1, 1, 1))
    for key, job in config.cron_jobs.items():
        name = f"{CRON}-{key}"
        pod = PodRequests(name, job.cpu_millicores, job.memory_mib)
        shapes.append(WorkloadShape(name, f"cronJobs.{key}", cron_job_pool(config, key), pod, 1, 1, 1))
    return shapes


def workload_vcpus(config: StackConfig, workload: Workload) -> float:
    """vCPUs the workload's pods request at the configured replicas (`worker`: every worker
    Deployment's)."""
    if workload == "web":
        return config.web.replicas * config.web.cpu_millicores / 1000
    return sum(d.spec.replicas * d.spec.cpu_millicores for d in worker_deployments(config)) / 1000
