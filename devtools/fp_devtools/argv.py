"""What each real server is started with: ids, ports and command lines, as plain functions.

Every value that changes from one start to the next (a cluster id, a port, a token) is made here
and put on a command line here, so that a unit test can run these functions thousands of times
against the servers' own argument rules (tests/unit/devservers/test_server_argv.py). A start that
fails once in 64 (a random id read as an option) cannot hide in a function no test repeats.

Values go in `--name=value` form wherever the server's parser accepts it: a separate value that
begins with '-' is taken for an option by argparse4j (Kafka's tools), and is ambiguous to others.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

# ------------------------------------------------------------------------------------------- ports


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct free ports: all sockets are held open until every port is chosen.

    Two calls of a one-port helper may return the same port (it is free again once the first
    socket closes); a server given the same port twice fails to start.
    """
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------------------------------------- Kafka


def kafka_cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A KRaft cluster id as Kafka's own `Uuid.randomUuid()` makes it: 16 random bytes in URL-safe
    base64 without padding, drawn again while it begins with '-' (one id in 64 would), which
    command-line parsers read as an option. The all-zero id is reserved by Kafka, so drawn again too."""
    while True:
        raw = random_bytes(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if not text.startswith("-") and raw != bytes(16):
            return text


def kafka_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """server.properties of one combined broker+controller on 127.0.0.1."""
    if port == controller_port:
        raise ValueError(f"Kafka's listener and controller ports must differ (both {port})")
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            # One node: every internal topic must have replication factor 1, or it is never created.
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.segment.bytes=67108864",
            "",
        ]
    )


def kafka_format(java: str, classpath: str, cluster_id: str, properties: Path) -> list[str]:
    """`StorageTool format`: the id joined to its option, so no id can be read as an option."""
    return [
        java,
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",
        f"--config={properties}",
    ]


def kafka_server(java: str, classpath: str, properties: Path) -> list[str]:
    return [
        java,
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(properties),
    ]


# -------------------------------------------------------------------------------------- Prometheus


def prometheus(binary: Path, config: Path, data: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d",
    ]


# -------------------------------------------------------------------------------- the control plane


def kube_token() -> str:
    """The admin's bearer token: hex, so it needs no quoting in tokens.csv (comma-separated)."""
    return secrets.token_hex(16)


def etcd(binary: str, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    if client_port == peer_port:
        raise ValueError(f"etcd's client and peer ports must differ (both {client_port})")
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    return [
        binary,
        "--name=fraudpipe-dev",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=fraudpipe-dev={peer}",
        # test data only: skipping fsync makes every write much faster
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def kube_apiserver(binary: str, home: Path, pki: dict[str, Path], etcd_port: int, port: int) -> list[str]:
    return [
        binary,
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={home / 'certs'}",
        f"--tls-cert-file={pki['apiserver_crt']}",
        f"--tls-private-key-file={pki['apiserver_key']}",
        f"--client-ca-file={pki['ca_crt']}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki['sa_key']}",
        f"--service-account-signing-key-file={pki['sa_key']}",
        f"--token-auth-file={home / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=10.0.0.0/24",
        # no kubelet mints tokens here, so Pods must not wait for a ServiceAccount token
        "--disable-admission-plugins=ServiceAccount",
        "--allow-privileged=true",
        f"--audit-policy-file={home / 'audit-policy.yaml'}",
        f"--audit-log-path={home / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
    ]


def kube_controller_manager(binary: str, home: Path, pki: dict[str, Path], kubeconfig: Path, port: int) -> list[str]:
    return [
        binary,
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--controllers=*",
        f"--service-account-private-key-file={pki['sa_key']}",
        f"--root-ca-file={pki['ca_crt']}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={home / 'kcm-certs'}",
    ]
