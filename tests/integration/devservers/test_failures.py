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
