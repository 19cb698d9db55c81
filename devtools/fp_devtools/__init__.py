"""Real servers on demand: Kafka, a Kubernetes control plane and Prometheus as plain processes.

Used by `fraudpipe dev` (for people) and by the pytest fixtures (for tests); both go through
`servers.up()` / `servers.down()`.
"""
