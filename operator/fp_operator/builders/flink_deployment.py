"""The PyFlink job: a FlinkDeployment (application mode) and, unless the
spec names one, a ServiceAccount with a RoleBinding to the chart's Flink job ClusterRole (the
JobManager creates TaskManager pods and HA ConfigMaps with it).

The job's arguments are the contract of docs/image-contracts.md.
"""

from __future__ import annotations

from fp_operator import labels, names
from fp_operator.kinds import api_version
from fraudpipeline.spec import FraudPipeline

PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
JOB_MODULE = "fp_flink.job"
PYTHON = "/usr/bin/python3"
MAIN_CONTAINER = "flink-main-container"  # the name the Flink operator merges pod templates on
# The S3 filesystem plugin the Flink distribution ships in opt/ (Presto's: Flink's advice for
# checkpoints); the image's entry point copies it into plugins/ when ENABLE_BUILT_IN_PLUGINS names it.
S3_PLUGIN = {"v2_2": "flink-s3-fs-presto-2.2.1.jar"}


def _state_dirs(p: FraudPipeline) -> list[str]:
    s = p.spec.stream
    dirs = [s.state.checkpoint_dir, s.state.savepoint_dir]
    if s.upgrade_mode != "stateless":
        dirs.append(s.state.ha_dir)
    return dirs


def _plugins(p: FraudPipeline) -> list[str]:
    """Built-in plugins the pod must enable: the S3 filesystem when any state directory is on s3://."""
    plugin = S3_PLUGIN.get(p.spec.stream.flink_version)
    if plugin and any(d.startswith(("s3://", "s3p://")) for d in _state_dirs(p)):
        return [plugin]
    return []


def job_args(p: FraudPipeline) -> list[str]:
    """PythonDriver arguments: Flink's -py* options first, then the job's own."""
    s = p.spec.stream
    args = [
        "-pym",
        JOB_MODULE,
        "--pipeline",
        f"{p.namespace}/{p.name}",
        "--bootstrap-servers",
        p.bootstrap_servers,
        "--transactions-topic",
        p.topic_name("transactions"),
        "--labels-topic",
        p.topic_name("labels"),
        "--alerts-topic",
        p.topic_name("alerts"),
        "--dead-letter-topic",
        p.topic_name("deadLetter"),
    ]
    if p.spec.kafka.topics.scores is not None:
        args += ["--scores-topic", p.topic_name("scores")]
    args += ["--group-id", p.consumer_group, "--scoring-mode", s.scoring.mode, "--model-tag", p.spec.model.model_tag]
    if s.scoring.mode == "embedded":
        args += ["--model-path", s.scoring.model_path]
    else:
        args += ["--serving-url", names.serving_url(p), "--serving-timeout-ms", str(s.scoring.timeout_ms)]
    if p.spec.model.threshold is not None:
        args += ["--threshold", repr(float(p.spec.model.threshold))]
    return args


def flink_configuration(p: FraudPipeline) -> dict[str, str]:
    """Flink configuration as strings (portable across Flink operator versions)."""
    s = p.spec.stream
    conf = {
        "taskmanager.numberOfTaskSlots": str(s.task_manager.slots),
        "pipeline.max-parallelism": str(s.max_parallelism),
        "execution.checkpointing.interval": s.checkpoint_interval,
        "execution.checkpointing.dir": s.state.checkpoint_dir,
        "execution.checkpointing.savepoint-dir": s.state.savepoint_dir,
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": str(names.FLINK_METRICS_PORT),
        "python.executable": PYTHON,
        "python.client.executable": PYTHON,
    }
    if s.upgrade_mode != "stateless":
        # last-state needs HA metadata; savepoint mode falls back to it when the job is unhealthy.
        conf["high-availability.type"] = "kubernetes"
        conf["high-availability.storageDir"] = s.state.ha_dir
    if s.autoscaler.enabled:
        conf["job.autoscaler.enabled"] = "true"
        conf["job.autoscaler.utilization.target"] = str(s.autoscaler.utilization_target)
    conf.update(s.flink_configuration)
    return dict(sorted(conf.items()))


FLINK_UID = 9999


def _pod_template(p: FraudPipeline) -> dict:
    s = p.spec.stream
    volume: dict = {"name": "flink-data"}
    if s.state.volume_claim:
        volume["persistentVolumeClaim"] = {"claimName": s.state.volume_claim}
    else:
        volume["emptyDir"] = {}
    container: dict = {
        "name": MAIN_CONTAINER,
        "ports": [{"name": "metrics", "containerPort": names.FLINK_METRICS_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": "flink-data", "mountPath": names.FLINK_DATA_MOUNT}],
        # The restricted Pod Security Standard, as the model pods meet it: a namespace enforcing it
        # would refuse the JobManager and TaskManagers otherwise.
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    plugins = _plugins(p)
    if plugins:
        container["env"] = [{"name": "ENABLE_BUILT_IN_PLUGINS", "value": ";".join(plugins)}]
    return {
        "metadata": {"labels": labels.pod_labels(p, "stream")},
        "spec": {
            # The image's `flink` user (uid and gid 9999 in the official image and ours); fsGroup makes
            # the state volume writable by it.
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": FLINK_UID,
                "runAsGroup": FLINK_UID,
                "fsGroup": FLINK_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [volume],
        },
    }


def build_flink_deployment(p: FraudPipeline, flink_api_version: str | None = None) -> dict:
    s = p.spec.stream
    return {
        "apiVersion": flink_api_version or api_version("FlinkDeployment"),
        "kind": "FlinkDeployment",
        "metadata": labels.metadata(p, names.stream(p), "stream"),
        "spec": {
            "image": s.image,
            "imagePullPolicy": s.image_pull_policy,
            "flinkVersion": s.flink_version,
            "serviceAccount": names.flink_service_account(p),
            "mode": "native",
            "flinkConfiguration": flink_configuration(p),
            "jobManager": {
                "replicas": 1,
                "resource": {"cpu": s.job_manager.resource.cpu, "memory": s.job_manager.resource.memory},
            },
            "taskManager": {"resource": {"cpu": s.task_manager.resource.cpu, "memory": s.task_manager.resource.memory}},
            "podTemplate": _pod_template(p),
            "job": {
                "jarURI": names.jar_uri(p),
                "entryClass": PYTHON_DRIVER,
                "args": job_args(p),
                "parallelism": s.parallelism,
                "upgradeMode": s.upgrade_mode,
                "state": "suspended" if p.spec.suspend else "running",
            },
        },
    }


def build_flink_service_account(p: FraudPipeline, cluster_role: str) -> list[dict]:
    """ServiceAccount + RoleBinding for the Flink pods; nothing when the spec brings its own account."""
    if p.spec.stream.service_account:
        return []
    name = names.flink_service_account(p)
    return [
        {
            "apiVersion": api_version("ServiceAccount"),
            "kind": "ServiceAccount",
            "metadata": labels.metadata(p, name, "stream"),
            "automountServiceAccountToken": True,
        },
        {
            "apiVersion": api_version("RoleBinding"),
            "kind": "RoleBinding",
            "metadata": labels.metadata(p, name, "stream"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": p.namespace}],
        },
    ]
