"""What the builders need to know beyond the spec: which APIs the cluster serves, operator options."""

from __future__ import annotations

from dataclasses import dataclass, field

from fp_operator.kinds import CHILD_KINDS, CHILDREN, MONITORING_KINDS


def _everything() -> dict[str, str]:
    return {k.kind: k.versions[0] for k in CHILDREN if k.optional}


@dataclass(frozen=True)
class Capabilities:
    """Found by discovery: the optional kinds (CRDs) the cluster serves, and at which version.
    Builders emit only what the cluster can store. Core kinds are always served."""

    served: dict[str, str] = field(default_factory=_everything)  # kind -> version, e.g. {"KafkaTopic": "v1"}

    def without(self, *kinds: str) -> Capabilities:
        return Capabilities({k: v for k, v in self.served.items() if k not in kinds})

    def at(self, kind: str, version: str) -> Capabilities:
        return Capabilities({**self.served, kind: version})

    def serves(self, kind: str) -> bool:
        return not CHILD_KINDS[kind].optional or kind in self.served

    def api_version(self, kind: str) -> str:
        """The apiVersion to write `kind` with (the served version of an optional kind)."""
        return CHILD_KINDS[kind].api_version(self.served.get(kind))

    @property
    def kafka_api_version(self) -> str | None:
        """kafka.strimzi.io version of KafkaTopic (reported in the status); None: not served."""
        return self.served.get("KafkaTopic")

    @property
    def monitoring(self) -> frozenset[str]:
        return frozenset(k for k in MONITORING_KINDS if k in self.served)


@dataclass(frozen=True)
class BuildOptions:
    """Operator-wide settings (environment variables of the operator, see docs/operator.md)."""

    flink_job_cluster_role: str = "fraudpipeline-flink-job"
    model_run_as_user: int = 1000
