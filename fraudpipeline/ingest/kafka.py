"""One idempotent Kafka producer shared by every request, driven from the service's event loop.

`Gateway.send(topic, records)` hands the records to librdkafka and returns once the broker has
acknowledged (or refused) each of them: acks=all with idempotence, so an acknowledged record is
written once, even when librdkafka retried it. Delivery reports are served by `poll()` calls
scheduled on the event loop itself (every millisecond while records are outstanding, every 100 ms
otherwise), so callbacks resolve request futures without a thread hop or a lock.

`message.timeout.ms` is the delivery deadline: a record the broker has not acknowledged by then
fails with _MSG_TIMED_OUT and its request is answered 503. While the broker is known to be down
(librdkafka reported all brokers down, or the metadata refresh failed), requests are refused at
once with 503 rather than queued. Topic metadata (partition counts) is refreshed in a worker
thread every few seconds; the producer never creates topics (`allow.auto.create.topics=false`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from fraudpipeline.ingest.bridge import Record

log = logging.getLogger("fraudpipeline.ingest")

# Per-record outcomes that are the record's own fault (answered inside `offsets`, the request is 200).
NOT_FOUND_CODES = frozenset(
    {KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART}
)
REFUSED_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError._INVALID_ARG,
    }
)
FORBIDDEN_CODES = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED})
DOWN_CODES = frozenset({KafkaError._ALL_BROKERS_DOWN})


class Unavailable(Exception):
    """Kafka cannot take records now (down, overloaded, or an acknowledgement timed out): answer 503."""


def record_error(err: KafkaError) -> tuple[int, str] | None:
    """(error_code, message) for a record the broker refused for its own reasons; None if retriable."""
    code = err.code()
    if code in NOT_FOUND_CODES:
        return 404, err.str()
    if code in REFUSED_CODES:
        return 422, err.str()
    if code in FORBIDDEN_CODES:
        return 403, err.str()
    return None


class _Batch:
    """The records of one request: a result per record, and a future set when the last one is in."""

    __slots__ = ("future", "pending", "results")

    def __init__(self, future: asyncio.Future, n: int):
        self.future = future
        self.results: list[Any] = [None] * n
        self.pending = n

    def done(self, index: int, err: KafkaError | None, msg: Any) -> None:
        self.results[index] = (msg.partition(), msg.offset()) if err is None else err
        self.pending -= 1
        if self.pending == 0 and not self.future.done():
            self.future.set_result(self.results)


@dataclass
class TopicInfo:
    partitions: dict[int, Any]  # partition id -> confluent_kafka PartitionMetadata

    @property
    def count(self) -> int:
        return len(self.partitions)


@dataclass
class ClusterView:
    """The last metadata seen: broker reachable, topics and their partitions."""

    up: bool = False
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    brokers: dict[int, Any] = field(default_factory=dict)
    checked_at: float = 0.0
    error: str | None = None


class Gateway:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        delivery_timeout_ms: int = 10_000,
        linger_ms: float = 1.0,
        metadata_refresh_s: float = 5.0,
        metadata_max_wait_ms: int = 5_000,
        max_queued_records: int = 200_000,
        producer_config: dict[str, Any] | None = None,
        on_state: Callable[[bool], None] | None = None,
        on_poll: Callable[[int], None] | None = None,
    ):
        self.bootstrap_servers = bootstrap_servers
        self.delivery_timeout_ms = delivery_timeout_ms
        self.metadata_refresh_s = metadata_refresh_s
        self.metadata_max_wait_ms = metadata_max_wait_ms
        self.max_queued_records = max_queued_records
        self.view = ClusterView()
        self.down_reason: str | None = "not connected yet"
        self.fatal: str | None = None
        self._first_state = True
        self._on_state = on_state
        self._on_poll = on_poll
        self.config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": "fraudpipe-ingest",
            # Nothing accepted is lost: every in-sync replica has it, and retries never duplicate.
            "enable.idempotence": True,
            "acks": "all",
            # Java's partitioner (murmur2), as the Strimzi bridge and Java producers place keys.
            "partitioner": "murmur2_random",
            # Creating topics is the operator's (Strimzi's) job, never a side effect of a typo.
            "allow.auto.create.topics": False,
            "linger.ms": linger_ms,
            "message.timeout.ms": delivery_timeout_ms,
            "request.timeout.ms": min(30_000, max(1_000, delivery_timeout_ms)),
            "queue.buffering.max.messages": max_queued_records,
            "queue.buffering.max.kbytes": 262_144,
            "batch.num.messages": 10_000,
            "socket.nagle.disable": True,
            # Back within a second of the broker's return (librdkafka's default backs off up to 10 s).
            "reconnect.backoff.max.ms": 1_000,
            "error_cb": self._on_error,
            # librdkafka's own log lines go through Python logging, not straight to stderr.
            "logger": logging.getLogger("fraudpipeline.ingest.librdkafka"),
            **(producer_config or {}),
        }
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._fast = False
        self._refresher: asyncio.Task | None = None
        self._refreshing: asyncio.Future | None = None
        self._missing: dict[str, float] = {}  # topic -> when metadata last said it does not exist
        self._admin_client: Any = None

    # ------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(self.config)
        self._timer = self._loop.call_later(0.1, self._tick)
        await self.refresh()
        self._refresher = asyncio.create_task(self._refresh_forever(), name="kafka-metadata")

    async def stop(self, flush_timeout: float = 10.0) -> int:
        """Stop refreshing, then wait up to `flush_timeout` for outstanding acknowledgements."""
        if self._refresher is not None:
            self._refresher.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        left = 0
        if self._producer is not None:
            deadline = time.monotonic() + flush_timeout
            while len(self._producer) and time.monotonic() < deadline:
                self._producer.poll(0)  # serve delivery reports here so their futures resolve
                await asyncio.sleep(0.01)
            left = self._producer.flush(0)
        return left

    @property
    def up(self) -> bool:
        return self.down_reason is None and self.fatal is None

    @property
    def queued(self) -> int:
        """Records handed to librdkafka and not yet acknowledged."""
        return len(self._producer) if self._producer is not None else 0

    # ------------------------------------------------------------------------------ polling

    def _tick(self) -> None:
        producer = self._producer
        if producer is None or self._loop is None:
            return
        producer.poll(0)
        queued = len(producer)
        busy = queued > 0
        if self._on_poll is not None:
            self._on_poll(queued)
        self._fast = busy
        self._timer = self._loop.call_later(0.001 if busy else 0.1, self._tick)

    def _kick(self) -> None:
        if not self._fast and self._loop is not None:
            self._fast = True
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(0.001, self._tick)

    def _on_error(self, err: KafkaError) -> None:
        # Served by poll(), so on the event loop thread.
        if err.fatal():
            self.fatal = f"the Kafka producer failed fatally: {err.str()}"
            log.error("%s; restart the service", self.fatal)
            self._set_down(self.fatal)
        elif err.code() in DOWN_CODES:
            self._set_down(f"no Kafka broker reachable at {self.bootstrap_servers} ({err.str()})")
        else:
            log.info("kafka: %s", err.str())

    def _set_down(self, reason: str | None) -> None:
        was_up, first = self.up, self._first_state
        self.down_reason = reason
        self._first_state = False
        if was_up != self.up or first:
            if self.up:
                log.log(logging.INFO if first else logging.WARNING, "kafka reachable at %s", self.bootstrap_servers)
            else:
                log.warning("kafka unavailable: %s", reason)
            if self._on_state is not None:
                self._on_state(self.up)

    # ----------------------------------------------------------------------------- metadata

    def _fetch(self, timeout_s: float) -> ClusterView:
        assert self._producer is not None
        md = self._producer.list_topics(timeout=timeout_s)
        # A topic exists unless the broker says it does not (a fresh one may still lack leaders).
        topics = {
            name: TopicInfo(dict(t.partitions))
            for name, t in md.topics.items()
            if t.partitions and (t.error is None or t.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART)
        }
        return ClusterView(up=bool(md.brokers), topics=topics, brokers=dict(md.brokers), checked_at=time.monotonic())

    async def refresh(self, timeout_s: float | None = None) -> ClusterView:
        """Fetch metadata in a worker thread (one fetch at a time; callers share it)."""
        if self._refreshing is not None:
            return await asyncio.shield(self._refreshing)
        assert self._loop is not None
        self._refreshing = self._loop.create_future()
        try:
            wait = timeout_s if timeout_s is not None else self.metadata_max_wait_ms / 1000
            try:
                view = await asyncio.to_thread(self._fetch, wait)
            except KafkaException as exc:
                view = ClusterView(
                    up=False,
                    topics=self.view.topics,
                    brokers={},
                    checked_at=time.monotonic(),
                    error=exc.args[0].str() if exc.args else str(exc),
                )
            self.view = view
            if view.up and self.fatal is None:
                self._set_down(None)
            elif not view.up:
                self._set_down(f"no Kafka broker reachable at {self.bootstrap_servers} ({view.error or 'no brokers'})")
            self._refreshing.set_result(view)
            return view
        except BaseException as exc:
            self._refreshing.set_exception(exc)
            raise
        finally:
            self._refreshing = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.metadata_refresh_s if self.up else 1.0)
            try:
                await self.refresh()
            except Exception:
                log.exception("metadata refresh failed")

    async def partition_count(self, topic: str) -> int | None:
        """Partitions of `topic`, None if it does not exist (a fresh look before saying so)."""
        info = self.view.topics.get(topic)
        if info is not None:
            return info.count
        seen_missing = self._missing.get(topic)
        if seen_missing is None or time.monotonic() - seen_missing > 1.0:
            view = await self.refresh()
            info = view.topics.get(topic)
            if info is not None:
                self._missing.pop(topic, None)
                return info.count
            if len(self._missing) > 10_000:
                self._missing.clear()
            self._missing[topic] = time.monotonic()
        return None

    # -------------------------------------------------------------------------------- sending

    def check_available(self, n: int) -> None:
        if self.fatal is not None:
            raise Unavailable(self.fatal)
        if self.down_reason is not None:
            raise Unavailable(f"Kafka is unavailable: {self.down_reason}")
        if self.queued + n > self.max_queued_records:
            raise Unavailable(f"the service is overloaded: {self.queued} records await acknowledgement")

    async def send(self, topic: str, records: list[Record]) -> list[Any]:
        """Produce `records` and wait for every acknowledgement.

        Returns one entry per record: (partition, offset), or the KafkaError of a record the
        broker refused. Raises Unavailable when Kafka is down or an acknowledgement did not come
        in time; some records of the request may then be written (the client's retry may
        duplicate them: at-least-once, as with any Kafka producer that retries).
        """
        self.check_available(len(records))
        assert self._loop is not None and self._producer is not None
        batch = _Batch(self._loop.create_future(), len(records))
        produce = self._producer.produce
        done = batch.done
        for i, (key, value, part, ts, headers) in enumerate(records):
            try:
                if ts or headers:
                    produce(topic, value, key, part, on_delivery=partial(done, i), timestamp=ts, headers=headers)
                else:  # (each keyword argument costs the C call a lookup: leave out the unused ones)
                    produce(topic, value, key, part, on_delivery=partial(done, i))
            except BufferError:
                batch.future.cancel()
                raise Unavailable("the producer queue is full: Kafka does not keep up") from None
            except KafkaException as exc:
                done(i, exc.args[0], None)
        if batch.pending:
            self._kick()
        try:
            return await asyncio.wait_for(batch.future, self.delivery_timeout_ms / 1000 + 2.0)
        except TimeoutError:
            raise Unavailable(f"Kafka did not acknowledge within {self.delivery_timeout_ms} ms") from None

    def _admin(self) -> Any:
        """One admin client for the metadata endpoints (made on first use; thread-safe)."""
        if self._admin_client is None:
            from confluent_kafka.admin import AdminClient

            self._admin_client = AdminClient(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "client.id": "fraudpipe-ingest",
                    "logger": logging.getLogger("fraudpipeline.ingest.librdkafka"),
                }
            )
        return self._admin_client

    async def describe_configs(self, topic: str, timeout_s: float = 5.0) -> dict[str, str]:
        """The topic's configuration (strings; unset values left out), via an admin client."""
        from confluent_kafka.admin import ConfigResource

        def fetch() -> dict[str, str]:
            res = ConfigResource(ConfigResource.Type.TOPIC, topic)
            entries = self._admin().describe_configs([res], request_timeout=timeout_s)[res].result(timeout=timeout_s)
            return {name: str(e.value) for name, e in entries.items() if e.value is not None}

        return await asyncio.to_thread(fetch)

    async def watermarks(self, topic: str, partition: int, timeout_s: float = 5.0) -> tuple[int, int]:
        """(beginning offset, end offset) of one partition."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec

        def fetch() -> tuple[int, int]:
            admin = self._admin()
            tp = TopicPartition(topic, partition)
            first = admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=timeout_s)[tp].result()
            last = admin.list_offsets({tp: OffsetSpec.latest()}, request_timeout=timeout_s)[tp].result()
            return first.offset, last.offset

        return await asyncio.to_thread(fetch)
