"""The ingest API: an HTTP front door to a FraudPipeline's Kafka topics (`fraudpipe ingest run`).

It speaks the Strimzi Kafka Bridge produce protocol (release 1.1.0), so one client works against
this service on one machine and against the KafkaBridge the operator creates on Kubernetes, and
adds POST /v1/transactions and /v1/labels, which validate the pipeline's records and key them as
the streaming job expects. `fraudpipe send` posts records through `kafka-bridge-client`.
See docs/ingest.md.
"""
