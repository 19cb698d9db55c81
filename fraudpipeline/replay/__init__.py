"""Replaying a transaction table into a pipeline: transactions in event-time order, keyed by card,
and their fraud labels a configurable delay of event time later (`fraudpipe replay`).

`events.replay_events(table, ...)` yields the records; a sink (`kafka.KafkaSink`, or the ingest
API over HTTP) delivers them; `runner.replay(...)` paces and counts. Nothing is imported here:
`fraudpipe` loads every command's module at start, and the events need pandas.
"""
