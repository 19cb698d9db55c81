"""The job's keyed steps: the 15 features from the shared online state classes, and batched scoring.

Keys are buckets (computed on the JVM from the id inside the record, see pipeline.py), and each
bucket keeps its cards or terminals in a MapState. Bucketing lets one keyed step own many keys'
states at once, so that in the fused layout (one bucket) both halves of the features and the
scoring live in one Python operator, the design measured fastest (docs/streaming.md); in the split
layout the card step and the terminal step are each spread over the buckets and scale out.

State is kept as snapshots plus a change log. A bucket's states live in Python (loaded whole on
its first use after a start); every change a record makes is appended to the bucket's log
(ListState), one small write, and the changed states are written to the MapStates only when the
log is compacted (every `COMPACT_EVERY` entries). A checkpoint thus holds the snapshots plus the
log since, and a restore replays the log onto the snapshots: the same states, and the same
features for the rows still waiting, for a fraction of the writes of saving each changed state
per record.

The same log holds the rows waiting for their scoring batch: they are scored when the batch is
full, when a processing-time timer fires (`--batch-timeout`), or at the end of a bounded input
(event-time timers fire then); a `scored` marker in state says how much of the log is decided,
so a restore scores again only what was not. Quiet keys are cleared by an event-time timer per
bucket, once per day of event time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedCoProcessFunction, KeyedProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor
from pyflink.datastream.time_domain import TimeDomain

from fp_flink import records
from fp_flink.config import JobConfig
from fraudpipeline.features.online import (
    LATENESS_US,
    CustomerState,
    RecordRefused,
    StreamClock,
    TerminalState,
    feature_vector,
)
from fraudpipeline.transactions import InvalidRecordError, parse_label, transaction_fields

log = logging.getLogger("fp_flink")

US_PER_MS = 1000
DAY_MS = 86_400_000
CLOCK_WRITE_US = 3_600_000_000
# Log entries between two writes of the changed states. Most keys change within that many
# records, so fewer compactions mean fewer writes; the log is in every checkpoint (~250 B an entry).
COMPACT_EVERY = 100_000

# Log entries (tuples, pickled into the ListState):
TX = 0  # (TX, value, cid, tid, tx_id, t_us, amount, source, arrived_at, c6 | None, key): c6 from the card step;
# key, the record's own Kafka key (its dead letter keeps it), is absent from entries written before it was added
LABEL = 1  # (LABEL, tid, t_us, tx_id, fraud)
CARD = 2  # split layout, card step: (CARD, cid, t_us, amount, tx_id)
CLEANUP = 3  # (CLEANUP, now_us): the keys expired at now_us were cleared here; a restore clears them too

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
KEYED_RECORD = Types.ROW_NAMED(["key", "value"], [BYTES, BYTES])
DEAD_LETTER = Types.ROW_NAMED(["key", "value", "headers"], [BYTES, BYTES, Types.MAP(Types.STRING(), BYTES)])
DEAD_LETTERS = OutputTag("dead-letters", DEAD_LETTER)
# The card step's output in the split layout: Row(terminal bucket, payload), keyed on the JVM by
# its first field; the payload is (source row, features so far), pickled.
CARD_STEP_OUTPUT = Types.ROW([Types.INT(), Types.PICKLED_BYTE_ARRAY()])
SCORES = OutputTag("scores", KEYED_RECORD)


def _dead_letter(row, reason: str, field: str, kind: str, pipeline: str) -> Row:
    # Source rows are (key, value, "topic/partition/offset[/flags]"); the original bytes are kept.
    key, value = records.original(row[0], row[1], row[2])
    return Row(key, value, records.dead_letter_headers(reason, field, kind, row[2], pipeline))


def _tombstone(kind: str, source: str) -> InvalidRecordError | None:
    if "/" + records.NO_VALUE in source:
        return InvalidRecordError(
            kind, [("(document)", "the record has no value (a Kafka tombstone): send one JSON object per record")]
        )
    return None


class _Metrics:
    """The contract's counters (group `fraudpipe`) plus scoring latency and batch size histograms."""

    def __init__(self, ctx: RuntimeContext, scoring: bool):
        group = ctx.get_metrics_group().add_group("fraudpipe")
        self.dead_letters = group.counter("dead_letters")
        self.refused = group.counter("refused")
        self.labels = group.counter("labels")
        self.labels_pending = group.counter("labels_pending")
        self.labels_too_old = group.counter("labels_too_old")
        self.labels_dropped = group.counter("labels_dropped")
        self.keys_cleared = group.counter("keys_cleared")
        if scoring:
            self.scored = group.counter("scored")
            self.alerts = group.counter("alerts")
            self.remote_retries = group.counter("remote_retries")
            self.latency_ms = _histogram(group, "scoring_latency_ms")
            self.batch_rows = _histogram(group, "batch_rows")


def _histogram(group, name: str):
    """A Flink DescriptiveStatisticsHistogram (exported as a summary); None where the Python API lacks it."""
    try:
        from pemja import findClass

        jgroup = group._metrics  # the Java MetricGroup behind PyFlink's thread-mode wrapper
        hist_class = findClass("org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram")
        return jgroup.histogram(name, hist_class(2048))
    except Exception as exc:  # noqa: BLE001 - metrics must never stop the job
        log.warning("histogram %s not available: %s", name, exc)
        return None


class _BucketStates:
    """One step's view of its keyed state: Python copies, snapshots in MapStates, a change log."""

    def __init__(self, ctx: RuntimeContext, customers: bool, terminals: bool):
        pickled = Types.PICKLED_BYTE_ARRAY()
        self.clock_state = ctx.get_state(ValueStateDescriptor("clock", pickled))
        self.customer_state = (
            ctx.get_map_state(MapStateDescriptor("customers", Types.STRING(), pickled)) if customers else None
        )
        self.terminal_state = (
            ctx.get_map_state(MapStateDescriptor("terminals", Types.STRING(), pickled)) if terminals else None
        )
        self.log_state = ctx.get_list_state(ListStateDescriptor("log", pickled))
        self.scored_state = ctx.get_state(ValueStateDescriptor("scored", Types.LONG()))
        # How many buckets the keys were spread over when this state was written (see `check_buckets`).
        self.buckets_state = ctx.get_state(ValueStateDescriptor("buckets", Types.INT()))
        self.clocks: dict[int, StreamClock] = {}
        self.customers: dict[int, dict[str, CustomerState]] = {}
        self.terminals: dict[int, dict[str, TerminalState]] = {}
        self.pending: dict[int, list[tuple]] = {}  # (TX entry, feature vector) waiting for their batch
        self.log_len: dict[int, int] = {}
        self.changed_customers: dict[int, set[str]] = {}
        self.changed_terminals: dict[int, set[str]] = {}
        self.cleanup_timer: dict[int, int] = {}
        self.last_cleanup_us: dict[int, int] = {}
        self.clock_written_us: dict[int, int] = {}

    def load(self, bucket: int, max_skew_us: int) -> None:
        """Bring a bucket's states into Python on its first use in this process: snapshots, then the log."""
        clock = self.clock_state.value()
        self.clocks[bucket] = clock if clock is not None else StreamClock(max_skew_us)
        customers = self.customers[bucket] = dict(self.customer_state.items()) if self.customer_state else {}
        terminals = self.terminals[bucket] = dict(self.terminal_state.items()) if self.terminal_state else {}
        changed_c = self.changed_customers[bucket] = set()
        changed_t = self.changed_terminals[bucket] = set()
        log = list(self.log_state.get() or [])
        scored = self.scored_state.value() or 0
        pending = self.pending[bucket] = []
        for i, entry in enumerate(log):
            kind = entry[0]
            try:
                if kind == TX:
                    _, _, cid, tid, tx_id, t_us, amount = entry[:7]
                    c6 = entry[9]
                    if self.customer_state is not None:
                        c6 = customers.setdefault(cid, CustomerState()).update(t_us, amount, tx_id)
                        changed_c.add(cid)
                    t6 = terminals.setdefault(tid, TerminalState()).update(t_us, tx_id)
                    changed_t.add(tid)
                    if i >= scored:  # the same states in the same order: the same features as then
                        pending.append((entry, feature_vector(t_us, amount, c6, t6)))
                elif kind == LABEL:
                    _, tid, t_us, tx_id, fraud = entry
                    terminals.setdefault(tid, TerminalState()).add_label(t_us, tx_id, fraud)
                    changed_t.add(tid)
                elif kind == CLEANUP:
                    self.clear_expired(bucket, entry[1])
                    continue  # not an event: the clock does not move
                else:
                    _, cid, t_us, amount, tx_id = entry
                    customers.setdefault(cid, CustomerState()).update(t_us, amount, tx_id)
                    changed_c.add(cid)
            except RecordRefused as exc:
                # The log holds only what the states accepted, replayed onto the snapshot they were
                # accepted onto: a refusal here means the two disagree. A transaction still waiting
                # is not dropped: it leaves as a dead letter saying so.
                log.error("restore: log entry %d of bucket %s refused on replay: %s", i, bucket, exc)
                if kind == TX and i >= scored:
                    pending.append((entry, None, f"not restored: {exc}"))
            clock = self.clocks[bucket]
            if clock.newest_us is None or entry_time(entry) > clock.newest_us:
                clock.newest_us = entry_time(entry)
        self.log_len[bucket] = len(log)

    def clear_expired(self, bucket: int, now_us: int) -> int:
        """Forget the keys nothing at or after `now_us` needs; their removal reaches the MapStates with
        the next compaction (and, until then, a restore replays the CLEANUP entry that logged it)."""
        cleared = 0
        for copies, changed in (
            (self.customers[bucket], self.changed_customers[bucket]),
            (self.terminals[bucket], self.changed_terminals[bucket]),
        ):
            for key in [k for k, v in copies.items() if v.expired(now_us)]:
                del copies[key]
                changed.add(key)
                cleared += 1
        return cleared

    def append(self, bucket: int, entry: tuple) -> None:
        self.log_state.add(entry)
        self.log_len[bucket] += 1

    def compact(self, bucket: int) -> None:
        """Write the states changed since the last compaction and start a new log (no row pending)."""
        for copies, state, changed in (
            (self.customers[bucket], self.customer_state, self.changed_customers[bucket]),
            (self.terminals[bucket], self.terminal_state, self.changed_terminals[bucket]),
        ):
            if state is None:
                continue
            for key in changed:
                value = copies.get(key)
                if value is None:
                    state.remove(key)
                else:
                    state.put(key, value)
            changed.clear()
        self.log_state.clear()
        self.log_len[bucket] = 0
        self.scored_state.update(0)


def _original_key(entry: tuple) -> bytes | None:
    """A TX entry's record key as it was in Kafka (null stays null); the card id for entries written
    before the key was kept (transactions are keyed by card, docs/topics)."""
    if len(entry) > 10:
        return records.original(entry[10], b"", entry[7])[0]
    return entry[2].encode()


class RestoreRefused(RuntimeError):
    """The job's state cannot be used as it is configured now; the message names the flag and the fix."""


def entry_time(entry: tuple) -> int:
    kind = entry[0]
    return entry[5] if kind == TX else entry[1] if kind == CLEANUP else entry[2]


class _Step:
    """What the card step, the terminal step and the fused step share."""

    def __init__(self, config: JobConfig, customers: bool, terminals: bool, scoring: bool):
        self.config = config
        self.do_customers = customers
        self.do_terminals = terminals
        self.do_scoring = scoring
        self.max_skew_us = config.max_skew_ms * US_PER_MS
        self.one_bucket = customers and terminals

    # -- lifecycle
    def _open(self, ctx: RuntimeContext) -> None:
        self._profile = _start_profile()
        self.s = _BucketStates(ctx, self.do_customers, self.do_terminals)
        self.m = _Metrics(ctx, self.do_scoring)
        self.scorer = _make_scorer(self.config, self.m) if self.do_scoring else None
        self.flush_timer: dict[int, bool] = {}
        self.pipeline = self.config.pipeline
        self.batch_size = self.config.batch_size

    def _close(self) -> None:
        if getattr(self, "scorer", None) is not None:
            self.scorer.close()
        _stop_profile(getattr(self, "_profile", None), type(self).__name__)

    def _bucket(self, ctx) -> int:
        # The fused layout has one bucket: asking Flink for the key would cost a JVM call per record.
        bucket = 0 if self.one_bucket else ctx.get_current_key()
        if bucket not in self.s.clocks:
            self._check_buckets()
            self.s.load(bucket, self.max_skew_us)
        return bucket

    def _check_buckets(self) -> None:
        """Refuse a restore into another bucket count: each card's and terminal's history sits in the
        bucket its id hashed to, and with another count the job would look for it elsewhere, silently
        starting every key afresh."""
        buckets = 1 if self.one_bucket else self.config.buckets
        written = self.s.buckets_state.value()
        if written is None:
            self.s.buckets_state.update(buckets)
        elif written != buckets:
            raise RestoreRefused(
                f"--buckets: this job's state was written with its keys spread over {written} bucket(s) and the "
                f"job now runs with {buckets}; each card's and terminal's history would be looked for in another "
                f"bucket. Run it with --buckets {written}, or start it without state."
            )

    # -- transactions
    def _transaction(self, row, ctx, bucket: int, upstream: tuple | None = None):
        """Features for one transaction: ("entry", the TX log entry), ("upstream", the card half) or
        ("dead", a dead letter)."""
        s = self.s
        try:
            if upstream is None:
                if not row[1] and _tombstone("transaction", row[2]):
                    raise _tombstone("transaction", row[2])
                tx_id, t_us, cid, tid, amount = transaction_fields(row[1])
            else:
                tx_id, t_us, cid, tid, amount, c6 = upstream
            self._admit(bucket, t_us)
            if self.do_customers:
                customers = s.customers[bucket]
                cust = customers.get(cid)
                if cust is None:
                    cust = customers[cid] = CustomerState()
                if cust.contains(tx_id):
                    # Both states are checked before either changes: update() raises
                    # DuplicateTransaction (with its message) and leaves the state as it was.
                    cust.update(t_us, amount, tx_id)
            if self.do_terminals:
                terminals = s.terminals[bucket]
                term = terminals.get(tid)
                if term is None:
                    term = terminals[tid] = TerminalState()
                t6 = term.update(t_us, tx_id)
                s.changed_terminals[bucket].add(tid)
            if self.do_customers:
                c6 = cust.update(t_us, amount, tx_id)
                s.changed_customers[bucket].add(cid)
        except InvalidRecordError as exc:
            return self._refuse(row, str(exc), exc.field, records.INVALID)
        except RecordRefused as exc:
            self.m.refused.inc()
            return self._refuse(row, str(exc), exc.field, records.REFUSED)
        self._schedule_cleanup(ctx, bucket, t_us)
        if not self.do_terminals:
            s.append(bucket, (CARD, cid, t_us, amount, tx_id))
            return ("upstream", (tx_id, t_us, cid, tid, amount, c6))
        upstream_c6 = None if self.do_customers else c6
        entry = (TX, row[1], cid, tid, tx_id, t_us, amount, row[2], time.time(), upstream_c6, row[0])
        s.append(bucket, entry)
        return ("entry", (entry, feature_vector(t_us, amount, c6, t6)))

    def _admit(self, bucket: int, t_us: int) -> None:
        """Refuse a record too far ahead of the stream (FutureRecord); checkpoint the clock now and then."""
        clock = self.s.clocks[bucket]
        clock.admit(t_us)
        newest = clock.newest_us
        # Written at most once per hour of event time: a restored clock that lags by less than that
        # still refuses what is a day ahead, and a state write per record would cost ~3 us.
        if newest is not None and newest - self.s.clock_written_us.get(bucket, -1 << 62) >= CLOCK_WRITE_US:
            self.s.clock_state.update(clock)
            self.s.clock_written_us[bucket] = newest

    def _refuse(self, row: Row, reason: str, field: str, kind: str):
        self.m.dead_letters.inc()
        return ("dead", _dead_letter(row, reason, field, kind, self.pipeline))

    # -- labels
    def _label(self, row: Row, ctx):
        bucket = self._bucket(ctx)
        s = self.s
        try:
            if not row[1] and _tombstone("label", row[2]):
                raise _tombstone("label", row[2])
            label = parse_label(row[1])
            t_us = label.event_time_us
            self._admit(bucket, t_us)
            terminals = s.terminals[bucket]
            term = terminals.get(label.terminal_id)
            if term is None:
                term = terminals[label.terminal_id] = TerminalState()
            outcome = term.add_label(t_us, label.transaction_id, label.fraud)
            s.changed_terminals[bucket].add(label.terminal_id)
            s.append(bucket, (LABEL, label.terminal_id, t_us, label.transaction_id, label.fraud))
        except InvalidRecordError as exc:
            yield DEAD_LETTERS, self._refuse(row, str(exc), exc.field, records.INVALID)[1]
            return
        except RecordRefused as exc:
            self.m.refused.inc()
            yield DEAD_LETTERS, self._refuse(row, str(exc), exc.field, records.REFUSED)[1]
            return
        outcome = str(getattr(outcome, "value", outcome))
        if outcome == "pending":
            self.m.labels_pending.inc()
        elif outcome == "too-old":
            self.m.labels_too_old.inc()
        elif outcome == "dropped":
            self.m.labels_dropped.inc()
        else:
            self.m.labels.inc()
        self._schedule_cleanup(ctx, bucket, t_us)
        self._maybe_compact(bucket)

    def _maybe_compact(self, bucket: int) -> None:
        s = self.s
        if s.log_len[bucket] >= COMPACT_EVERY and not s.pending.get(bucket):
            s.compact(bucket)

    # -- batching and scoring
    def _buffer(self, row: tuple, ctx, bucket: int):
        pending = self.s.pending[bucket]
        pending.append(row)  # (entry, vector); the entry is in the log (state), so a checkpoint keeps it
        if len(pending) >= self.batch_size:
            yield from self._flush(bucket)
        elif not self.flush_timer.get(bucket):
            service = ctx.timer_service()
            service.register_processing_time_timer(service.current_processing_time() + self.config.batch_timeout_ms)
            self.flush_timer[bucket] = True

    def _flush(self, bucket: int):
        rows = self.s.pending[bucket]
        if not rows:
            return
        self.s.pending[bucket] = []
        m = self.m
        if any(row[1] is None for row in rows):  # rows a restore could not rebuild (see _BucketStates.load)
            for entry, _, reason in (row for row in rows if row[1] is None):
                m.dead_letters.inc()
                headers = records.dead_letter_headers(reason, "(restore)", records.REFUSED, entry[7], self.pipeline)
                yield (DEAD_LETTERS, Row(_original_key(entry), entry[1], headers))
            rows = [row for row in rows if row[1] is not None]
            if not rows:
                self.s.scored_state.update(self.s.log_len[bucket])
                return
        scored = self.scorer.score([vector for _, vector in rows])
        decided_at = time.time()
        scores_topic = self.config.scores_topic is not None
        alerts = 0
        for i, (entry, vector) in enumerate(rows):
            value, cid, tid, tx_id, t_us, source = entry[1], entry[2], entry[3], entry[4], entry[5], entry[7]
            if i in scored.refused:
                m.dead_letters.inc()
                yield (
                    DEAD_LETTERS,
                    Row(
                        _original_key(entry),
                        value,
                        records.dead_letter_headers(
                            scored.refused[i], "(features)", records.UNSCORABLE, source, self.pipeline
                        ),
                    ),
                )
                continue
            score = float(scored.probabilities[i])
            is_fraud = bool(scored.decisions[i])
            key = cid.encode()
            if scores_topic:
                yield (
                    SCORES,
                    Row(
                        key,
                        records.score_value(
                            tx_id,
                            cid,
                            tid,
                            t_us,
                            score,
                            is_fraud,
                            scored.threshold,
                            scored.model_tag,
                            self.pipeline,
                            decided_at,
                        ),
                    ),
                )
            if is_fraud:
                alerts += 1
                yield Row(
                    key,
                    records.alert_value(
                        value, vector, score, scored.threshold, scored.model_tag, self.pipeline, source, decided_at
                    ),
                )
        # Marked decided only now: a checkpoint taken before this point still has them pending, so a
        # restart scores them again and the uncommitted outputs of this attempt are aborted with it.
        s = self.s
        s.scored_state.update(s.log_len[bucket])
        self._maybe_compact(bucket)
        m.scored.inc(len(rows) - len(scored.refused))
        if alerts:
            m.alerts.inc(alerts)
        if m.latency_ms is not None:
            m.latency_ms.update(int((decided_at - rows[0][0][8]) * 1000))
            m.batch_rows.update(len(rows))

    # -- timers
    def _schedule_cleanup(self, ctx, bucket: int, t_us: int) -> None:
        due = (t_us // US_PER_MS // DAY_MS + 1) * DAY_MS
        if self.s.cleanup_timer.get(bucket, -1) < due:
            ctx.timer_service().register_event_time_timer(due)
            self.s.cleanup_timer[bucket] = due

    def _on_timer(self, timestamp: int, ctx):
        bucket = self._bucket(ctx)
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            self.flush_timer[bucket] = False
            if self.do_scoring:
                yield from self._flush(bucket)
            return
        # Event time: once a day of event time, and at the end of a bounded input (final watermark).
        if self.do_scoring:
            yield from self._flush(bucket)
        self._cleanup(bucket, timestamp * US_PER_MS)

    def _cleanup(self, bucket: int, timer_us: int) -> None:
        s = self.s
        newest = s.clocks[bucket].newest_us
        if newest is None:
            return
        # A watermark pushed far ahead (a refused far-future record) must not clear live keys: the
        # stream clock only advances with accepted records. And a transaction up to LATENESS_US
        # older than the newest still gets exact features (docs/features.md): keep what it needs.
        now = min(timer_us, newest) - LATENESS_US
        if now - s.last_cleanup_us.get(bucket, -1 << 62) < DAY_MS * US_PER_MS:
            return
        s.last_cleanup_us[bucket] = now
        cleared = s.clear_expired(bucket, now)
        if cleared:
            # Logged, so that a restore before the next compaction clears the same keys at the same
            # point instead of bringing them back from the snapshot.
            s.append(bucket, (CLEANUP, now))
            self.m.keys_cleared.inc(cleared)


PROFILE_ENV = "FRAUDPIPE_STREAM_PROFILE"


def _start_profile():
    """cProfile of this step's thread when $FRAUDPIPE_STREAM_PROFILE names a folder (development)."""
    import os

    if not os.environ.get(PROFILE_ENV):
        return None
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    return profile


def _stop_profile(profile, name: str) -> None:
    if profile is None:
        return
    import os

    profile.disable()
    folder = os.environ[PROFILE_ENV]
    os.makedirs(folder, exist_ok=True)
    profile.dump_stats(os.path.join(folder, f"{name}-{os.getpid()}-{id(profile)}.prof"))


def _make_scorer(config: JobConfig, metrics: _Metrics):
    from fp_flink.scoring import EmbeddedScorer, RemoteScorer

    if config.scoring_mode == "embedded":
        return EmbeddedScorer(config.model_path, config.model_tag, config.threshold)
    return RemoteScorer(
        config.serving_url,
        config.model_tag,
        config.threshold,
        config.serving_timeout_ms,
        config.serving_concurrency,
        on_retry=lambda reason: metrics.remote_retries.inc(),
        max_wait_ms=config.scoring_max_wait_ms,
    )


class ScoringStep(KeyedCoProcessFunction, _Step):
    """Input 1: transactions (source rows, or the card step's output); input 2: labels.

    Fused layout: one bucket, both feature halves and the scoring. Split layout: terminal half and
    scoring, the customer half comes from `CardStep`.
    """

    def __init__(self, config: JobConfig, fused: bool):
        _Step.__init__(self, config, customers=fused, terminals=True, scoring=True)
        self.fused = fused

    def open(self, runtime_context: RuntimeContext):
        self._open(runtime_context)

    def close(self):
        self._close()

    def process_element1(self, value: Any, ctx):
        bucket = self._bucket(ctx)
        if self.fused:
            kind, out = self._transaction(value, ctx, bucket)
        else:
            # From the card step: (source row fields, features so far), pickled.
            source_row, upstream = value
            kind, out = self._transaction(source_row, ctx, bucket, upstream)
        if kind == "dead":
            yield DEAD_LETTERS, out
            return
        yield from self._buffer(out, ctx, bucket)

    def process_element2(self, value: Any, ctx):
        yield from self._label(value, ctx)

    def on_timer(self, timestamp: int, ctx):
        yield from self._on_timer(timestamp, ctx)


class CardStep(KeyedProcessFunction, _Step):
    """Split layout, first step: parses, admits to the stream clock, computes the card's half."""

    def __init__(self, config: JobConfig):
        _Step.__init__(self, config, customers=True, terminals=False, scoring=False)

    def open(self, runtime_context: RuntimeContext):
        self._open(runtime_context)

    def close(self):
        self._close()

    def process_element(self, value: Any, ctx):
        bucket = self._bucket(ctx)
        # value: (terminal bucket, key, value, source)
        kind, out = self._transaction(value[1:], ctx, bucket)
        if kind == "dead":
            yield DEAD_LETTERS, out
            return
        self._maybe_compact(bucket)
        yield Row(value[0], (tuple(value[1:]), out))

    def on_timer(self, timestamp: int, ctx):
        yield from self._on_timer(timestamp, ctx)
