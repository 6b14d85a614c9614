"""How much of the benchmark machine's CPU one vCPU of an EC2 type is worth.

This is an assumption, and the plan prints it next to every figure it affects. A results
file measured on a node pool of the type itself (`machine.instance_type`) replaces it.

The assumption: one vCPU of an EC2 type does the work of one logical CPU of the machine the
benchmark ran on (the CPU count the benchmark reports is Python's `os.cpu_count()`, logical
CPUs). What an AWS vCPU is differs by family, which is why this is only an assumption:

* Intel and AMD types (m4, m5, m6i, m7i, c5, c6i, r5, t3): a vCPU is one hyperthread of a
  physical core, two per core (EC2 `VCpuInfo.DefaultThreadsPerCore` = 2);
* Graviton types (m6g, c6g, c7g): a vCPU is a whole physical core (no SMT);
* burstable types (t3): sustained use above the baseline spends CPU credits. At full use we
  count only the baseline share of each vCPU (t3.medium 20%, t3.large 30%); in unlimited
  mode (T3's default) the instance can run above it at $0.05 per vCPU-hour, which is not
  priced here.

Sources are in `data/SOURCES.md` ("CPU per vCPU").
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.config.catalog import instance_type

# Baseline utilisation per vCPU of the burstable types in the catalog: credits earned per
# hour / (60 x vCPUs) from the EC2 User Guide's burstable credit table (t3.medium earns 24
# credits an hour over 2 vCPUs, t3.large 36).
BURSTABLE_BASELINE = {"t3.medium": 0.20, "t3.large": 0.30}

_PROCESSORS = {
    "m4": "Intel Xeon (Broadwell/Haswell), vCPU = hyperthread",
    "m5": "Intel Xeon Platinum (Skylake/Cascade Lake), vCPU = hyperthread",
    "m6i": "Intel Xeon (Ice Lake), vCPU = hyperthread",
    "m7i": "Intel Xeon (Sapphire Rapids), vCPU = hyperthread",
    "c5": "Intel Xeon Platinum (Skylake/Cascade Lake), vCPU = hyperthread",
    "c6i": "Intel Xeon (Ice Lake), vCPU = hyperthread",
    "r5": "Intel Xeon Platinum (Skylake/Cascade Lake), vCPU = hyperthread",
    "t3": "Intel Xeon (Skylake/Cascade Lake), vCPU = hyperthread, burstable",
    "m6g": "AWS Graviton2, vCPU = core",
    "c6g": "AWS Graviton2, vCPU = core",
    "c7g": "AWS Graviton3, vCPU = core",
}


@dataclass(frozen=True)
class CpuBasis:
    """Benchmark CPUs one vCPU of `instance_type` is worth, and why."""

    instance_type: str
    per_vcpu: float
    measured: bool
    note: str

    def describe(self) -> str:
        return f"{self.instance_type}: 1 vCPU = {self.per_vcpu:g} benchmark CPU ({self.note})"


def processor(instance: str) -> str:
    family = instance.split(".", 1)[0]
    return _PROCESSORS.get(family, "processor not catalogued")


def assumed_basis(instance: str, measured_on: str) -> CpuBasis:
    """The assumption for `instance` when the figures come from the machine `measured_on`."""
    it = instance_type(instance)
    baseline = BURSTABLE_BASELINE.get(it.name)
    share = 1.0 if baseline is None else baseline
    note = f"assumed: {processor(it.name)}; measured on {measured_on}"
    if baseline is not None:
        note += f"; only the {baseline:.0%} baseline counted at sustained full use"
    return CpuBasis(it.name, share, measured=False, note=note)


def measured_basis(instance: str, label: str) -> CpuBasis:
    """A results file measured on a node of `instance` needs no assumption."""
    baseline = BURSTABLE_BASELINE.get(instance)
    share = 1.0 if baseline is None else baseline
    note = f"measured on {instance} itself ({label})"
    if baseline is not None:
        note += f"; only the {baseline:.0%} baseline counted at sustained full use"
    return CpuBasis(instance, share, measured=True, note=note)


def running_speed(basis: CpuBasis) -> float:
    """Benchmark CPUs one vCPU is worth while it runs: the basis without a burstable type's
    baseline share (a t3 vCPU runs as fast as any hyperthread; only its sustained share is less).

    A CPU time measured on one type is work of `seconds x running_speed` benchmark CPU seconds,
    which the basis of any other type turns into its throughput: how a stack's measured CPU per
    task replaces the benchmark's figure on every type (stack.model.throughput.compare).
    """
    return basis.per_vcpu / BURSTABLE_BASELINE.get(basis.instance_type, 1.0)
