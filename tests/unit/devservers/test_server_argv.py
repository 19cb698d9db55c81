"""Every real server's start, built thousands of times and held to the servers' own argument rules.

A random KRaft cluster id began with '-' once in 64 starts, and Kafka's StorageTool (argparse4j)
read it as an option: 65 tests errored on one broker start. These tests repeat every random part of
a start (ids, ports, tokens) often enough that a 1-in-64, or a 1-in-1,000, failure shows here.
"""

from __future__ import annotations

import base64
import itertools
import re
from pathlib import Path

import pytest

from fp_devtools import argv

RUNS = 3_000

# Options that take no value, by server (from each server's --help); any other option must carry
# its value joined with '=' (see `_check_joined`).
FLAGS = {
    "etcd": {"--unsafe-no-fsync"},
    "prometheus": {"--web.enable-lifecycle"},
    "kube-apiserver": set(),
    "kube-controller-manager": set(),
    "StorageTool": set(),
}


def argparse4j_parse(args: list[str], options: dict[str, bool]) -> dict[str, str | bool]:
    """argparse4j's reading of a command line (Kafka's tools): a token that begins with '-' is an
    option (it has no negative-number options), so an option's separate value may not begin with
    '-'; `--name=value` carries any value. `options` maps a long name to whether it takes a value."""
    out: dict[str, str | bool] = {}
    it = iter(args)
    for token in it:
        if not token.startswith("-"):
            out.setdefault("_positional", token)
            continue
        name, eq, value = token.partition("=")
        if name not in options:
            raise ValueError(f"unrecognized argument: {token}")
        if not options[name]:
            out[name] = True
        elif eq:
            out[name] = value
        else:
            nxt = next(it, None)
            if nxt is None or nxt.startswith("-"):
                raise ValueError(f"argument {name}: expected one argument")
            out[name] = nxt
    return out


STORAGE_TOOL_OPTIONS = {"--cluster-id": True, "--config": True, "--ignore-formatted": False, "--standalone": False}


def _check_joined(server: str, args: list[str]) -> None:
    """Every option is `--name=value` or a known flag; every path value is absolute."""
    for token in args:
        if not token.startswith("-"):
            continue
        name, eq, value = token.partition("=")
        assert eq or name in FLAGS[server], f"{server}: {token} has its value apart (or is an unknown flag)"
        if value.startswith("/") or name.endswith(("-dir", "-file", ".path", ".file", "kubeconfig")):
            assert Path(value).is_absolute(), f"{server}: {token} is not an absolute path"


def test_cluster_ids_never_begin_with_a_dash_and_are_kafka_uuids():
    ids = [argv.kafka_cluster_id() for _ in range(RUNS * 3)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    for i in ids[:RUNS]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", i)
        assert len(base64.urlsafe_b64decode(i + "==")) == 16


def test_a_draw_that_would_begin_with_a_dash_is_drawn_again():
    # 0xf8 -> first six bits 111110 = 62, '-' in URL-safe base64: what uuid4 gave one start in 64.
    draws = iter([b"\xf8" + bytes(15), bytes(16), b"\x01" * 16])
    got = argv.kafka_cluster_id(lambda n: next(draws))
    assert got == base64.urlsafe_b64encode(b"\x01" * 16).rstrip(b"=").decode()


def test_storage_format_is_read_right_by_argparse4j_whatever_the_id(tmp_path):
    props = tmp_path / "server.properties"
    dashed = ["-" + "A" * 21, "--" + "x" * 20, "-t", "-c"]
    for cluster_id in itertools.chain(dashed, (argv.kafka_cluster_id() for _ in range(RUNS))):
        cmd = argv.kafka_format("/usr/bin/java", "/cp/a.jar:/cp/b.jar", cluster_id, props)
        tool = cmd.index("kafka.tools.StorageTool")
        assert cmd[tool + 1] == "format"
        parsed = argparse4j_parse(cmd[tool + 2 :], STORAGE_TOOL_OPTIONS)
        assert parsed == {"--cluster-id": cluster_id, "--config": str(props)}
        _check_joined("StorageTool", cmd[tool + 2 :])


def test_the_old_form_fails_on_a_dashed_id_as_the_real_tool_did():
    """The rule above is the one that broke starts: a separate '-...' value is an option."""
    with pytest.raises(ValueError, match="expected one argument"):
        argparse4j_parse(["-t", "-Abc", "-c", "/x/server.properties"], {"-t": True, "-c": True})


def test_ports_are_distinct_and_usable_every_time():
    for n in (2, 4):
        for _ in range(RUNS // 2):
            ports = argv.free_ports(n)
            assert len(set(ports)) == n and all(1024 <= p <= 65535 for p in ports), ports


def test_kafka_refuses_one_port_for_two_listeners(tmp_path):
    with pytest.raises(ValueError, match="must differ"):
        argv.kafka_properties(tmp_path, 9092, 9092)


def test_kafka_properties_with_random_ports_name_both_listeners(tmp_path):
    for _ in range(RUNS // 3):
        port, controller = argv.free_ports(2)
        text = argv.kafka_properties(tmp_path / "data", port, controller)
        props = dict(line.split("=", 1) for line in text.splitlines() if line)
        assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
        assert props["controller.quorum.voters"] == f"1@127.0.0.1:{controller}"
        assert Path(props["log.dirs"]).is_absolute()
    server = argv.kafka_server("/usr/bin/java", "/cp/a.jar", tmp_path / "server.properties")
    assert server[-2:] == ["kafka.Kafka", str(tmp_path / "server.properties")]


def test_control_plane_and_prometheus_lines_carry_every_value_joined(tmp_path):
    pki = {k: tmp_path / "pki" / f"{k}.pem" for k in ("ca_crt", "apiserver_crt", "apiserver_key", "sa_key")}
    for _ in range(RUNS // 3):
        etcd_client, etcd_peer, api, kcm = argv.free_ports(4)
        etcd = argv.etcd("/bin/etcd", tmp_path / "etcd", etcd_client, etcd_peer)
        _check_joined("etcd", etcd[1:])
        assert f"--listen-client-urls=http://127.0.0.1:{etcd_client}" in etcd
        assert f"--initial-cluster=fraudpipe-dev=http://127.0.0.1:{etcd_peer}" in etcd
        _check_joined("kube-apiserver", argv.kube_apiserver("/bin/kube-apiserver", tmp_path, pki, etcd_client, api)[1:])
        _check_joined(
            "kube-controller-manager",
            argv.kube_controller_manager("/bin/kcm", tmp_path, pki, tmp_path / "kubeconfig", kcm)[1:],
        )
        _check_joined("prometheus", argv.prometheus(Path("/bin/prometheus"), tmp_path / "p.yml", tmp_path, api)[1:])
    with pytest.raises(ValueError, match="must differ"):
        argv.etcd("/bin/etcd", tmp_path, 2379, 2379)


def test_admin_tokens_need_no_quoting_in_the_token_file():
    for _ in range(RUNS):
        token = argv.kube_token()
        assert re.fullmatch(r"[0-9a-f]{32}", token)
