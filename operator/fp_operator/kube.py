"""The one place the operator talks to the API server (besides kopf's own watches).

Children are written with server-side apply under one field manager (`fraudpipeline-operator`,
force=true: we own what we set); the FraudPipeline's status with a merge patch on the status
subresource; events as events.k8s.io/v1 Events. Every request is counted (by verb and kind) in
/metrics.

Plain HTTPS from the standard library (one keep-alive connection per thread), authenticated by
kopf's own kubeconfig/ServiceAccount login, so that kopf and the reconciler act as one identity.
No Kubernetes client library: kopf imports whichever is installed (the official one is 65 MB of
generated models) and we need none of it.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import os
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fp_operator import kinds, metrics
from fp_operator.builders.context import Capabilities
from fp_operator.labels import FIELD_MANAGER, REPORTING_CONTROLLER

_DISCOVERY_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
TIMEOUT_SECONDS = 30.0
NOTE_LIMIT = 1024  # bytes: events.k8s.io/v1 refuses longer notes


class ApiError(Exception):
    """A refused or failed API request, with the API server's own message."""

    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(f"{status} {reason}: {message}" if reason else f"{status}: {message}")
        self.status, self.message, self.reason = status, message, reason

    @property
    def namespace_terminating(self) -> bool:
        """The API server refuses new objects in a namespace being deleted: nothing to repair there."""
        return self.status == 403 and "being terminated" in self.message

    @property
    def retryable(self) -> bool:
        """Worth trying again unchanged: the network (0), a conflict or a missing namespace or CRD
        that may appear (404, 409), throttling (429), the server or a webhook it calls (5xx).
        Everything else (400, 403, 422: invalid, forbidden, refused by admission) is permanent
        until the spec or the object changes."""
        return self.status in (0, 404, 408, 409, 429) or self.status >= 500


def login(kubeconfig: str | None = None) -> Any:
    """Credentials (kopf.ConnectionInfo) from a kubeconfig (the path, else $KUBECONFIG or
    ~/.kube/config) or, without one, the pod's ServiceAccount. kopf's on.login uses this too."""
    import kopf

    settings = kopf.OperatorSettings()
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    info = None
    if os.environ.get("KUBECONFIG") or os.path.exists(os.path.expanduser("~/.kube/config")):
        info = kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        info = kopf.login_with_service_account(settings=settings)
    if info is None:
        raise kopf.LoginError("no kubeconfig and no in-cluster ServiceAccount: give --kubeconfig")
    return info


class _Https:
    """HTTP(S) to one API server: a keep-alive connection per thread, re-login on 401."""

    def __init__(self, login_fn: Callable[[], Any]):
        self._login = login_fn
        self._local = threading.local()
        self._lock = threading.Lock()
        self._generation = 0
        self._files: list[str] = []
        self._configure(login_fn())

    def _configure(self, info: Any) -> None:
        url = urllib.parse.urlsplit(info.server)
        ctx = None
        if url.scheme == "https":
            cadata = base64.b64decode(info.ca_data).decode() if info.ca_data else None
            ctx = ssl.create_default_context(cafile=os.fspath(info.ca_path) if info.ca_path else None, cadata=cadata)
            if info.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            cert = self._file(info.certificate_data) or info.certificate_path
            key = self._file(info.private_key_data) or info.private_key_path
            if cert:
                ctx.load_cert_chain(os.fspath(cert), os.fspath(key) if key else None)
        headers = {}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        elif info.username:
            basic = base64.b64encode(f"{info.username}:{info.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        with self._lock:
            self.host, self.port = url.hostname or "localhost", url.port or (443 if ctx else 80)
            self.prefix = url.path.rstrip("/")
            self.context, self.auth = ctx, headers
            self._generation += 1

    def _file(self, data: str | bytes | None) -> str | None:
        """ssl loads client certificates from files only: a private temporary file for data."""
        if not data:
            return None
        fd, path = tempfile.mkstemp(prefix="fp-operator-")
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))
        self._files.append(path)
        return path

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection (and whether it is new)."""
        held = getattr(self._local, "conn", None)
        if held is not None and held[0] == self._generation:
            return held[1], False
        if held is not None:
            held[1].close()
        with self._lock:
            generation, host, port, ctx = self._generation, self.host, self.port, self.context
        conn = (
            http.client.HTTPSConnection(host, port, context=ctx, timeout=TIMEOUT_SECONDS)
            if ctx
            else http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        )
        self._local.conn = (generation, conn)
        return conn, True

    def _drop(self) -> None:
        held = getattr(self._local, "conn", None)
        if held is not None:
            held[1].close()
            self._local.conn = None

    def call(
        self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        target = self.prefix + path + (("?" + urllib.parse.urlencode(query)) if query else "")
        relogged = False
        retried = False
        while True:
            conn, fresh = self._connection()
            try:
                conn.request(method, target, body=body, headers={**self.auth, **headers})
                resp = conn.getresponse()
                data = resp.read()
            except (
                ConnectionResetError,
                BrokenPipeError,
                http.client.BadStatusLine,
                http.client.CannotSendRequest,
            ) as exc:
                self._drop()
                if fresh or retried:
                    raise ApiError(0, f"cannot reach the API server: {exc}") from None
                retried = True  # a keep-alive connection the server had closed: once more, on a new one
                continue
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                self._drop()
                raise ApiError(0, f"cannot reach the API server: {exc}") from None
            if resp.will_close:
                self._drop()
            if resp.status == 401 and not relogged:
                relogged = True  # a rotated ServiceAccount token: read it again
                self._configure(self._login())
                continue
            return resp.status, data


class Kube:
    """Requests of the reconciler, the finalizer and leader election."""

    field_manager = FIELD_MANAGER

    def __init__(self, transport: _Https, identity: str | None = None):
        self.transport = transport
        self.identity = identity or socket.gethostname()

    @classmethod
    def from_config(cls, kubeconfig: str | None = None) -> Kube:
        """From a kubeconfig (path, else $KUBECONFIG/~/.kube/config) or the in-cluster account."""
        return cls(_Https(lambda: login(kubeconfig)))

    # ------------------------------------------------------------------------------------ plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        kind: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> dict | None:
        metrics.API_REQUESTS.labels(verb=verb, kind=kind).inc()
        headers = {"Accept": accept, "User-Agent": _user_agent()}
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            payload = json.dumps(body, separators=(",", ":")).encode()
        status, data = self.transport.call(method, path, query or [], headers, payload)
        if status >= 400:
            message, reason = data.decode(errors="replace")[:2000], ""
            try:
                doc = json.loads(data)
                message, reason = doc.get("message", message), doc.get("reason", "")
            except ValueError:
                pass
            raise ApiError(status, message, reason)
        return json.loads(data) if data else None

    # ------------------------------------------------------------------------------------- objects

    def apply(self, obj: dict) -> dict:
        """Server-side apply of a whole desired object (creates it when missing)."""
        m = obj["metadata"]
        path = path_of(obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"])
        return self.request(
            "PATCH",
            path,
            verb="apply",
            kind=obj["kind"],
            body=obj,
            # Strict: an unknown field is an error, not silently pruned.
            query=[("fieldManager", self.field_manager), ("force", "true"), ("fieldValidation", "Strict")],
            content_type="application/apply-patch+yaml",
        )

    def merge_patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict, subresource: str | None = None
    ) -> dict:
        """A JSON merge patch; with metadata.resourceVersion in `patch`, refused (409) if the object
        changed meanwhile."""
        path = path_of(api_version, kind, namespace, name, subresource)
        return self.request(
            "PATCH",
            path,
            verb="patch",
            kind=kind,
            body=patch,
            query=[("fieldManager", self.field_manager)],
            content_type="application/merge-patch+json",
        )

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict, previous: dict | None
    ) -> dict:
        """Replace our status: keys we no longer report are removed (null in a merge patch)."""
        body = dict(status)
        for key in previous or {}:
            body.setdefault(key, None)
        return self.merge_patch(api_version, kind, namespace, name, {"status": body}, subresource="status")

    def create(self, obj: dict) -> dict:
        m = obj["metadata"]
        return self.request(
            "POST",
            path_of(obj["apiVersion"], obj["kind"], m.get("namespace")),
            verb="create",
            kind=obj["kind"],
            body=obj,
            query=[("fieldManager", self.field_manager)],
        )

    def replace(self, obj: dict) -> dict:
        """PUT: refused (409) unless metadata.resourceVersion is still the stored one."""
        m = obj["metadata"]
        return self.request(
            "PUT",
            path_of(obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"]),
            verb="update",
            kind=obj["kind"],
            body=obj,
            query=[("fieldManager", self.field_manager)],
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            self.request(
                "DELETE",
                path_of(api_version, kind, namespace, name),
                verb="delete",
                kind=kind,
                body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"},
            )
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict]:
        """Objects of a kind (apiVersion and kind filled in, as a watch would deliver them)."""
        query = [("labelSelector", label_selector)] if label_selector else []
        doc = self.request("GET", path_of(api_version, kind, namespace), verb="list", kind=kind, query=query)
        items = (doc or {}).get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        try:
            return self.request("GET", path_of(api_version, kind, namespace, name), verb="get", kind=kind)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def post_event(self, regarding: dict, *, reason: str, note: str, action: str, warning: bool = False) -> None:
        """An events.k8s.io/v1 Event about `regarding` (a FraudPipeline): transitions and errors only."""
        meta = regarding["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": kinds.EVENT.api_version(),
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"]},
            "eventTime": now,
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "action": action,
            "note": note.encode()[:NOTE_LIMIT].decode(errors="ignore"),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.identity[:128],
            "regarding": {
                "apiVersion": regarding.get("apiVersion", kinds.PIPELINE.api_version()),
                "kind": regarding.get("kind", kinds.PIPELINE.kind),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
        }
        self.request(
            "POST",
            path_of(kinds.EVENT.api_version(), "Event", meta["namespace"]),
            verb="create",
            kind="Event",
            body=event,
        )

    # ----------------------------------------------------------------------------------- discovery

    def discover(self) -> Capabilities:
        """Which optional child kinds the cluster serves, at which version (aggregated discovery:
        one request; older API servers: one per group of interest)."""
        doc = self.request("GET", "/apis", verb="discovery", kind="APIGroupDiscoveryList", accept=_DISCOVERY_ACCEPT)
        groups = {k.group for k in kinds.CHILDREN if k.optional}
        served: dict[str, dict[str, set[str]]] = {}
        if (doc or {}).get("kind") == "APIGroupDiscoveryList":
            for group in doc.get("items") or []:
                versions = served.setdefault(group["metadata"]["name"], {})
                for v in group.get("versions") or []:
                    versions[v["version"]] = {r["resource"] for r in v.get("resources") or []}
        else:
            for group in (doc or {}).get("groups") or []:
                if group["name"] not in groups:
                    continue
                for v in group.get("versions") or []:
                    res = self.request("GET", f"/apis/{v['groupVersion']}", verb="discovery", kind="APIResourceList")
                    served.setdefault(group["name"], {})[v["version"]] = {
                        r["name"] for r in (res or {}).get("resources") or [] if "/" not in r["name"]
                    }
        found = {}
        for k in kinds.CHILDREN:
            if k.optional:
                version = next((v for v in k.versions if k.plural in served.get(k.group, {}).get(v, set())), None)
                if version:
                    found[k.kind] = version
        return Capabilities(found)


@functools.cache
def _user_agent() -> str:
    """Read once: package metadata comes from disk."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{FIELD_MANAGER}/{version('fraudpipeline')}"
    except PackageNotFoundError:
        return f"{FIELD_MANAGER}/dev"


def path_of(
    api_version: str, kind: str, namespace: str | None, name: str | None = None, subresource: str | None = None
) -> str:
    """REST path of `kind` at `api_version` (group/version, or v1 for the core API)."""
    return kinds.KINDS[kind].path(api_version.rsplit("/", 1)[-1], namespace, name, subresource)
