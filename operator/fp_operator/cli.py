"""`fraudpipe operator`: run the operator (out of cluster, or as the image's entry point) and
regenerate its CRD. kopf and the kubernetes client are imported inside the commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The FraudPipeline operator (kopf): run it, or regenerate its CRD.", no_args_is_help=True)


@app.command("run")
def run(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            help="Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, else the in-cluster ServiceAccount).",
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Watch only this namespace (repeatable).")
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace (the default).")
    ] = False,
    liveness_port: Annotated[int, typer.Option(help="Port of the liveness endpoint /healthz (0: none).")] = 8080,
    metrics_port: Annotated[int, typer.Option(help="Port of the Prometheus endpoint /metrics (0: none).")] = 9090,
    workers: Annotated[
        int | None, typer.Option(help="Reconcile worker threads (default: $FRAUDPIPE_OPERATOR_WORKERS or 4).")
    ] = None,
    leader_election: Annotated[
        bool,
        typer.Option(
            "--leader-election",
            help="Reconcile only while holding a coordination.k8s.io Lease, so that "
            "several replicas can run (one active, the others standing by).",
        ),
    ] = False,
    leader_election_namespace: Annotated[
        str | None, typer.Option(help="Namespace of the Lease (default: $POD_NAMESPACE, else the ServiceAccount's).")
    ] = None,
    leader_election_id: Annotated[str, typer.Option(help="Name of the Lease.")] = "fraudpipeline-operator",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the operator until interrupted; each reconcile is logged in one line."""
    if namespace and all_namespaces:
        raise typer.BadParameter("give either --namespace or --all-namespaces, not both")
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise typer.BadParameter(f"{kubeconfig} is not a file", param_hint="--kubeconfig")
        os.environ["KUBECONFIG"] = str(kubeconfig.resolve())  # kopf's login reads it too
    if workers is not None:
        os.environ["FRAUDPIPE_OPERATOR_WORKERS"] = str(workers)

    import signal
    import threading

    # kopf imports a Kubernetes client library's models whenever one is installed (the official
    # client's are 65 MB of generated classes); the operator talks to the API server itself
    # (kube.py), so none is wanted here, whatever else the environment holds.
    for optional in ("kubernetes", "kubernetes_asyncio", "pykube"):
        sys.modules.setdefault(optional, None)  # type: ignore[assignment]

    import kopf
    from prometheus_client import start_http_server

    import fp_operator.handlers  # noqa: F401  (registers the handlers)
    from fp_operator.runtime import LeaderElection, Runtime

    election = None
    if leader_election:
        lease_ns = leader_election_namespace or os.environ.get("POD_NAMESPACE") or _service_account_namespace()
        if not lease_ns:
            raise typer.BadParameter("give --leader-election-namespace (or set POD_NAMESPACE)")
        election = LeaderElection(namespace=lease_ns, name=leader_election_id)
    kopf.configure(verbose=verbose)
    if not verbose:  # kopf logs every handled watch event; our reconciler logs one line per reconcile
        import logging

        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # liveness probes
    lost = threading.Event()

    def on_lost() -> None:
        # kopf's own graceful stop (a stop_flag would leave an executor thread waiting on it at exit).
        lost.set()
        os.kill(os.getpid(), signal.SIGTERM)

    runtime = Runtime.from_environment(str(kubeconfig) if kubeconfig else None, namespace or None, election, on_lost)
    if metrics_port:
        from prometheus_client import REGISTRY

        from fp_operator.status_metrics import PipelineStatusCollector

        REGISTRY.register(PipelineStatusCollector(runtime.cache))  # each pipeline's readiness
        start_http_server(metrics_port)
    scope = f"namespaces {', '.join(namespace)}" if namespace else "all namespaces"
    lease = f"; leader election on lease {election.namespace}/{election.name}" if election else ""
    print(
        f"fraudpipeline operator: watching {scope}; liveness :{liveness_port}/healthz, "
        f"metrics :{metrics_port}/metrics{lease}",
        file=sys.stderr,
        flush=True,
    )
    # kopf runs standalone on every replica: it only watches; the Lease decides who writes.
    kopf.run(
        standalone=True,
        clusterwide=not namespace,
        namespaces=namespace or (),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        memo=kopf.Memo(runtime=runtime),
    )
    if lost.is_set():
        print("fraudpipeline operator: lost the lease; exiting to restart as a standby", file=sys.stderr, flush=True)
        raise typer.Exit(1)


@app.command("wait-for-deletions")
def wait_for_deletions(
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="Kubeconfig (default: as `run`: else the in-cluster account).")
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Look only in this namespace (repeatable).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds (and still exit 0).")] = 120.0,
) -> None:
    """Wait until no FraudPipeline is being deleted with our finalizer still on it.

    The chart's pre-delete hook runs it: `helm uninstall` (or `skaffold delete`) right after the
    pipelines were deleted then keeps the operator running until it has released their topics and
    removed its finalizer; without it, the pipelines would stay stuck terminating. It never blocks
    an uninstall for longer than `--timeout`.
    """
    import time

    from fp_operator.kinds import PIPELINE
    from fp_operator.kube import Kube
    from fp_operator.labels import FINALIZER

    kube = Kube.from_config(str(kubeconfig) if kubeconfig else None)
    deadline = time.monotonic() + timeout
    while True:
        pending = [
            f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            for ns in namespace or [None]
            for obj in kube.list(PIPELINE.api_version(), PIPELINE.kind, ns)
            if obj["metadata"].get("deletionTimestamp") and FINALIZER in (obj["metadata"].get("finalizers") or [])
        ]
        if not pending:
            typer.echo("no FraudPipeline is being deleted", err=True)
            return
        if time.monotonic() > deadline:
            typer.echo(f"still being deleted after {timeout:.0f} s: {', '.join(pending)}; going on", err=True)
            return
        time.sleep(1.0)


def _service_account_namespace() -> str | None:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else None


@app.command("crd")
def crd(
    write: Annotated[bool, typer.Option("--write", help="Write crds/ and the chart's copy.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a checked-in copy differs.")] = False,
) -> None:
    """Print the FraudPipeline CRD generated from fraudpipeline/spec.py (or write/check the copies and the
    field reference in docs/operator.md)."""
    from fp_operator.crd import crd_targets, render_crd, write_crds, write_docs

    if write:
        for path in [*write_crds(), write_docs()]:
            if path:
                typer.echo(f"wrote {path}", err=True)
        return
    if check:
        text = render_crd()
        stale = [str(p) for p in crd_targets() if not p.exists() or p.read_text() != text]
        if stale:
            typer.echo(f"out of date: {', '.join(stale)}; run `fraudpipe operator crd --write`", err=True)
            raise typer.Exit(1)
        typer.echo("CRD copies are up to date", err=True)
        return
    typer.echo(render_crd(), nl=False)
