"""The local mode: one FraudPipeline file run on this machine, without Kubernetes.

`fraudpipe up -f FILE` starts the real Kafka broker (`fraudpipe dev`'s), the ingest API, the
BentoML scoring service, the PyFlink job in a local mini-cluster, Prometheus with the operator's
alert rules, and a live page; `fraudpipe down` stops exactly those processes. Installed in
.venv only, never in an image (docs/local.md).
"""
