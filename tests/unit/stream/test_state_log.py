"""The scoring step's state (snapshots plus a change log) survives a restore: a run checkpointed at any
point and restored into a fresh step commits exactly what an uninterrupted run does.

The step runs here on small fakes of Flink's state and timer interfaces (state values pass through
pickle, as they do in Flink); the real thing is tested end to end in tests/integration/stream.
"""

from __future__ import annotations

import pickle

import orjson
import pytest

from fp_flink import functions
from fp_flink.config import parse_args

# ---------------------------------------------------------------- fakes of Flink's interfaces


class _Value:
    def __init__(self):
        self.data = None

    def value(self):
        return None if self.data is None else pickle.loads(self.data)

    def update(self, v):
        self.data = pickle.dumps(v)


class _Map:
    def __init__(self):
        self.data = {}

    def items(self):
        return [(k, pickle.loads(v)) for k, v in self.data.items()]

    def put(self, k, v):
        self.data[k] = pickle.dumps(v)

    def remove(self, k):
        self.data.pop(k, None)


class _List:
    def __init__(self):
        self.data = []

    def add(self, v):
        self.data.append(pickle.dumps(v))

    def get(self):
        return [pickle.loads(v) for v in self.data]

    def clear(self):
        self.data = []


class _Counter:
    def inc(self, n=1):
        pass


class _Group:
    def add_group(self, name):
        return self

    def counter(self, name):
        return _Counter()


class _Runtime:
    """get_*_state by descriptor name; `checkpoint()` copies every state, as a snapshot does."""

    def __init__(self, states: dict | None = None):
        self.states = states or {}

    def _get(self, desc, cls):
        return self.states.setdefault(desc.name, cls())

    def get_state(self, desc):
        return self._get(desc, _Value)

    def get_map_state(self, desc):
        return self._get(desc, _Map)

    def get_list_state(self, desc):
        return self._get(desc, _List)

    def get_metrics_group(self):
        return _Group()

    def checkpoint(self) -> dict:
        return pickle.loads(pickle.dumps(self.states))


class _Timers:
    def current_processing_time(self):
        return 0

    def register_processing_time_timer(self, t):
        pass

    def register_event_time_timer(self, t):
        pass


class _Ctx:
    def get_current_key(self):
        return 0

    def timer_service(self):
        return _Timers()

    def time_domain(self):
        from pyflink.datastream.time_domain import TimeDomain

        return TimeDomain.EVENT_TIME


# ---------------------------------------------------------------- the step under test


@pytest.fixture(scope="module")
def events():
    """Transactions and labels (released a day later), as source rows, with a few bad ones."""
    from fraudpipeline.data.handbook import HandbookConfig, transactions
    from fraudpipeline.replay.events import replay_events

    table = transactions(HandbookConfig(n_customers=300, n_terminals=400, days=40))
    table = table[table["timestamp"] >= "2018-04-20"].head(4000)
    out = []
    for i, e in enumerate(replay_events(table, label_delay_us=86_400_000_000, labels="fraud")):
        out.append((e.role, (e.key, e.value, f"{e.role}/0/{2 * i}")))
        if i % 997 == 0:
            out.append(("transactions", (b"k", b'{"broken', f"transactions/0/{2 * i + 1}")))
    return out


def _step(model_dir, runtime: _Runtime):
    config = parse_args(
        [
            "--pipeline",
            "t/p",
            "--bootstrap-servers",
            "k:1",
            "--transactions-topic",
            "t",
            "--labels-topic",
            "l",
            "--alerts-topic",
            "a",
            "--dead-letter-topic",
            "d",
            "--scores-topic",
            "s",
            "--group-id",
            "g",
            "--scoring-mode",
            "embedded",
            "--model-path",
            str(model_dir),
            "--model-tag",
            "fraud-xgb:unit",
            "--batch-size",
            "64",
        ]
    )
    step = functions.ScoringStep(config, fused=True)
    step.open(runtime)
    return step


def _feed(step, events, ctx) -> list:
    out = []
    for role, row in events:
        calls = step.process_element1(row, ctx) if role == "transactions" else step.process_element2(row, ctx)
        out.extend(calls)
    return out


def _decisions(outputs) -> list[tuple]:
    """(transaction id, score) of every score record, and every dead letter's source."""
    out = []
    for item in outputs:
        if isinstance(item, tuple) and item[0] is functions.SCORES:
            s = orjson.loads(item[1][1])
            out.append(("score", s["transaction_id"], s["score"]))
        elif isinstance(item, tuple) and item[0] is functions.DEAD_LETTERS:
            out.append(("dead", item[1][2]["fraudpipe.source.offset"]))
        else:
            out.append(("alert", orjson.loads(item[1])["transaction"]["transaction_id"]))
    return sorted(out)


def _end(step, ctx) -> list:
    return list(step.on_timer(2**62, ctx))


@pytest.mark.parametrize("crash_at", [100, 1234, 2903])
def test_restored_run_commits_what_an_uninterrupted_one_does(model_dir, events, monkeypatch, crash_at):
    monkeypatch.setattr(functions, "COMPACT_EVERY", 500)  # several compactions before and after the crash
    ctx = _Ctx()
    whole = _step(model_dir, _Runtime())
    reference = _decisions(_feed(whole, events, ctx) + _end(whole, ctx))
    assert sum(1 for d in reference if d[0] == "score") > 3500 and any(d[0] == "alert" for d in reference)

    runtime = _Runtime()
    first = _step(model_dir, runtime)
    committed = _feed(first, events[:crash_at], ctx)  # emitted before the checkpoint barrier: committed
    snapshot = runtime.checkpoint()
    _feed(first, events[crash_at : crash_at + 300], ctx)  # after it: aborted with the crash
    second = _step(model_dir, _Runtime(snapshot))
    committed += _feed(second, events[crash_at:], ctx) + _end(second, ctx)
    assert _decisions(committed) == reference


def _tx(tx_id: str, when: str, card: str, terminal: str, offset: int) -> tuple:
    value = orjson.dumps(
        {"transaction_id": tx_id, "timestamp": when, "customer_id": card, "terminal_id": terminal, "amount": 12.5}
    )
    return ("transactions", (card.encode(), value, f"transactions/0/{offset}"))


def _days(first: str, last: str, offset: int) -> list[tuple]:
    """Two transactions a day by card F from `first` to `last` (midnight and noon): the stream's clock
    advances half a day at a time (a record more than a day ahead of it would be refused)."""
    from datetime import date, timedelta

    d, end, out = date.fromisoformat(first), date.fromisoformat(last), []
    while d <= end:
        for hour in ("00", "12"):
            out.append(_tx(f"f{d}T{hour}", f"{d}T{hour}:00:00Z", "F", "W", offset + len(out)))
        d += timedelta(days=1)
    return out


def _day_ms(day: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(day + "T00:00:00+00:00").timestamp() * 1000)


def test_a_key_cleared_before_the_checkpoint_stays_cleared_after_the_restore(model_dir):
    """A card quiet for over a month is cleared (forgetting its ids); a restore from a checkpoint taken
    after the clean-up, before the next compaction, must not bring it back from the snapshot: the
    repeat of its old id that follows is a new transaction in both runs, scored, not refused."""
    ctx = _Ctx()
    before = [
        _tx("a1", "2018-04-01T10:00:00Z", "C", "T", 0),
        *_days("2018-04-02", "2018-05-03", 100),
        _tx("b1", "2018-05-04T10:00:00Z", "D", "U", 1),  # the stream's clock: 33 days later
    ]
    cleanup_at = _day_ms("2018-05-05")  # the daily event-time timer: C expired (31 days with the lateness)
    after = [_tx("a1", "2018-05-04T11:00:00Z", "C", "V", 2), _tx("b2", "2018-05-04T12:00:00Z", "D", "U", 3)]

    def run(restore: bool) -> list:
        runtime = _Runtime()
        step = _step(model_dir, runtime)
        out = _feed(step, before, ctx) + list(step.on_timer(cleanup_at, ctx))
        if restore:
            step = _step(model_dir, _Runtime(runtime.checkpoint()))
        return _decisions(out + _feed(step, after, ctx) + _end(step, ctx))

    uninterrupted = run(restore=False)
    assert [d[1] for d in uninterrupted if d[0] == "score"].count("a1") == 2  # the repeat is new: C was cleared
    assert not [d for d in uninterrupted if d[0] == "dead"]
    assert run(restore=True) == uninterrupted


def test_a_transaction_within_the_lateness_after_a_clean_up_keeps_its_history(model_dir):
    """docs/features.md: a transaction up to a day older than the stream's newest gets exact features.
    The daily clean-up must keep what it needs: the card's transaction 30 days earlier still counts."""
    ctx = _Ctx()
    events = [
        _tx("c1", "2018-04-01T12:00:00Z", "C", "T", 0),
        *_days("2018-04-02", "2018-05-01", 100),
        _tx("d1", "2018-05-02T00:30:00Z", "D", "U", 1),  # clock: 30 days 12.5 hours after c1
    ]
    step = _step(model_dir, _Runtime())
    out = _feed(step, events, ctx) + list(step.on_timer(_day_ms("2018-05-02"), ctx))
    # 18 hours late, within the day allowed: c1 (29 days 18 hours before it) is in its 30-day window.
    out += _feed(step, [_tx("c2", "2018-05-01T06:00:00Z", "C", "T", 2)], ctx) + _end(step, ctx)
    scores = {orjson.loads(o[1][1])["transaction_id"]: o for o in out if o[0] is functions.SCORES}
    assert {"c1", "d1", "c2"} <= set(scores)
    step_alerts = [o for o in out if isinstance(o, tuple) and o[0] is functions.DEAD_LETTERS]
    assert not step_alerts
    # The features of c2 are in its alert only; recompute them from the step's own state instead:
    card = step.s.customers[0].get("C")
    assert card is not None and len(card) == 2, "the clean-up cleared the card a late transaction still needed"


def test_an_unscorable_transaction_leaves_with_its_own_key_and_old_log_entries_restore(model_dir, events):
    """docs/streaming.md: a dead letter keeps the record's original key (here not the card id). A log
    written before entries carried the key (10 fields) still restores and scores the same."""
    from fp_flink.scoring import Scored

    class Refusing:
        """The model service refusing the batch's first row (a 422 narrowed to it)."""

        def __init__(self, inner):
            self.inner = inner

        def score(self, rows):
            s = self.inner.score(rows)
            return Scored(s.probabilities, s.decisions, s.model_tag, s.threshold, {0: "refused by the service"})

        def close(self):
            pass

    ctx = _Ctx()
    step = _step(model_dir, _Runtime())
    step.scorer = Refusing(step.scorer)
    tx = {"transaction_id": "u1", "timestamp": "2018-04-20T10:00:00Z", "customer_id": "C", "terminal_id": "T"}
    value = orjson.dumps({**tx, "amount": 1})
    out = _feed(step, [("transactions", (b"original-key", value, "transactions/0/7"))], ctx) + _end(step, ctx)
    (dead,) = [o for o in out if isinstance(o, tuple) and o[0] is functions.DEAD_LETTERS]
    assert dead[1][0] == b"original-key" and dead[1][1] == value
    assert dead[1][2]["fraudpipe.error.kind"] == b"unscorable"

    # The same run with the log's entries cut back to the old 10 fields restores to the same decisions.
    runtime = _Runtime()
    first = _step(model_dir, runtime)
    _feed(first, events[:500], ctx)
    snapshot = runtime.checkpoint()
    log = snapshot["log"]
    log.data = [pickle.dumps(e[:10] if e[0] == functions.TX else e) for e in map(pickle.loads, log.data)]
    restored, fresh = _step(model_dir, _Runtime(snapshot)), _step(model_dir, _Runtime(runtime.checkpoint()))
    tail = events[500:900]
    assert _decisions(_feed(restored, tail, ctx) + _end(restored, ctx)) == _decisions(
        _feed(fresh, tail, ctx) + _end(fresh, ctx)
    )
