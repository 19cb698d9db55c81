"""A server that fails to start leaves nothing running behind it."""

from __future__ import annotations

import psutil
import pytest

from fp_devtools import servers
from fp_devtools.process import ServerFailed

pytestmark = pytest.mark.integration

BROKEN_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-validations:
            - rule: "self.spec.size >"
"""


def _processes_under(path) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(path) in cmd:
            found.append(cmd[:120])
    return found


def test_a_crd_the_api_server_refuses_stops_the_control_plane(tmp_path, monkeypatch):
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "broken.yaml").write_text(BROKEN_CRD)
    monkeypatch.setenv("FRAUDPIPE_UPSTREAM_CRDS", str(crds))
    state = tmp_path / "dev"
    with pytest.raises(ServerFailed, match="widgets.example.com"):
        servers.up(["kube"], state)
    assert _processes_under(state) == []
    assert servers.status(state) == {}


def test_a_broker_that_cannot_listen_is_named_with_the_end_of_its_log(tmp_path):
    """What a test using the `kafka` fixture is told when the broker does not start."""
    import socket

    from fp_devtools import argv, kafka
    from fp_devtools.cache import MissingPrerequisite

    try:
        kafka.classpath()
    except MissingPrerequisite as exc:
        pytest.skip(f"Kafka's jars cannot be had here: {exc} (`make servers` fetches them)")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(ServerFailed) as failed:
            kafka.start(tmp_path, port=taken.getsockname()[1], controller_port=argv.free_ports(1)[0])
    finally:
        taken.close()
    report = failed.value.report("kafka")
    assert failed.value.server == "kafka"
    assert report.startswith("the kafka dev server did not start")
    assert f"last lines of {tmp_path / 'logs' / 'kafka.log'}" in report
    assert "Address already in use" in report, report
    assert _processes_under(tmp_path) == []
