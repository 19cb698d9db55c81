"""Pure parts of the dev servers: configs, certificates, env.json bookkeeping."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from fp_devtools import argv, kube, prometheus, servers
from fp_devtools.certs import make_pki


def test_kafka_single_node_config_makes_internal_topics_creatable(tmp_path):
    props = dict(line.split("=", 1) for line in argv.kafka_properties(tmp_path, 9092, 9093).splitlines() if line)
    assert props["process.roles"] == "broker,controller"
    # Defaults are 3: on one node __consumer_offsets and __transaction_state would never be created.
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"


def test_apiserver_certificate_is_valid_for_loopback_and_in_cluster_names(tmp_path):
    paths = make_pki(tmp_path)
    cert = x509.load_pem_x509_certificate(paths["apiserver_crt"].read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert oct(paths["sa_key"].stat().st_mode & 0o777) == "0o600"


def test_missing_upstream_crds_are_named_with_the_variable_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUDPIPE_UPSTREAM_CRDS", str(tmp_path / "nowhere"))
    _, missing = kube.crd_files()
    assert missing and "FRAUDPIPE_UPSTREAM_CRDS" in missing[0] and "nowhere" in missing[0]


def test_prometheus_config_scrapes_files_components_drop_in(tmp_path):
    cfg = prometheus.config(tmp_path / "targets")
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert str(tmp_path / "targets" / "*.json") in jobs["fraudpipe"]["file_sd_configs"][0]["files"]


def test_unknown_server_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kafka, kube, prometheus"):
        servers.up(["zookeeper"], tmp_path)


def test_down_without_env_stops_nothing(tmp_path):
    assert servers.down(tmp_path) == []
    assert servers.status(tmp_path) == {}
