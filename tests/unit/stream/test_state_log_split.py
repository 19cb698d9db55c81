"""The split layout's two keyed steps survive a restore: several buckets per step, the terminal half
with labels, and the daily clean-up timers firing mid-stream as the watermark passes each day.

A small harness plays what Flink does around the steps: keyed state per bucket (values pickled), the
card step's output routed to the terminal step by the bucket it names, event-time timers kept per
key and fired in time order once the watermark (the newest transaction time less 5 s) passes them,
and checkpoints that copy every key's state and every registered timer. A run checkpointed at any
point and restored into fresh steps must commit exactly what an uninterrupted run commits.
"""

from __future__ import annotations

import copy
import pickle
import zlib

import orjson
import pytest
from test_state_log import _decisions, _step

from fp_flink import functions

BUCKETS = 4
OUT_OF_ORDERNESS_MS = 5_000


class _Keyed:
    """One keyed state: per-bucket values, read and written for the runtime's current key."""

    def __init__(self, rt: _KeyedRuntime, name: str):
        self.rt, self.name = rt, name

    @property
    def _data(self) -> dict:
        return self.rt.data.setdefault(self.name, {})


class _Value(_Keyed):
    def value(self):
        raw = self._data.get(self.rt.key)
        return None if raw is None else pickle.loads(raw)

    def update(self, v):
        self._data[self.rt.key] = pickle.dumps(v)


class _Map(_Keyed):
    def _mine(self) -> dict:
        return self._data.setdefault(self.rt.key, {})

    def items(self):
        return [(k, pickle.loads(v)) for k, v in self._mine().items()]

    def put(self, k, v):
        self._mine()[k] = pickle.dumps(v)

    def remove(self, k):
        self._mine().pop(k, None)


class _List(_Keyed):
    def _mine(self) -> list:
        return self._data.setdefault(self.rt.key, [])

    def add(self, v):
        self._mine().append(pickle.dumps(v))

    def get(self):
        return [pickle.loads(v) for v in self._mine()]

    def clear(self):
        self._data[self.rt.key] = []


class _Group:
    def add_group(self, name):
        return self

    def counter(self, name):
        return self

    def inc(self, n=1):
        pass


class _KeyedRuntime:
    """Keyed state, event-time timers and the current key of one operator; `checkpoint()` copies all."""

    def __init__(self, data: dict | None = None, timers: set | None = None):
        self.data = data or {}
        self.timers: set[tuple[int, int]] = timers or set()  # (time ms, key)
        self.key = 0

    def get_state(self, desc):
        return _Value(self, desc.name)

    def get_map_state(self, desc):
        return _Map(self, desc.name)

    def get_list_state(self, desc):
        return _List(self, desc.name)

    def get_metrics_group(self):
        return _Group()

    # the context's face
    def get_current_key(self):
        return self.key

    def timer_service(self):
        return self

    def current_processing_time(self):
        return 0

    def register_processing_time_timer(self, t):
        pass  # batches flush when full and at the end; processing time plays no part here

    def register_event_time_timer(self, t):
        self.timers.add((t, self.key))

    def time_domain(self):
        from pyflink.datastream.time_domain import TimeDomain

        return TimeDomain.EVENT_TIME

    def checkpoint(self) -> tuple[dict, set]:
        return copy.deepcopy(self.data), set(self.timers)


def _bucket(value: bytes, field: str) -> int:
    try:
        ident = str(orjson.loads(value)[field])
    except (ValueError, KeyError, TypeError):
        ident = ""
    return zlib.crc32(ident.encode()) % BUCKETS


class _Split:
    """The card step and the terminal step, wired as the job wires them, on keyed runtimes."""

    def __init__(self, model_dir, states: tuple | None = None, buckets: int | None = None):
        from dataclasses import replace

        card_state, term_state, self.watermark = states or (({}, set()), ({}, set()), -(1 << 62))
        self.card_rt, self.term_rt = _KeyedRuntime(*card_state), _KeyedRuntime(*term_state)
        config = _step(model_dir, _KeyedRuntime()).config
        if buckets is not None:
            config = replace(config, buckets=buckets)
        self.card = functions.CardStep(config)
        self.card.open(self.card_rt)
        self.term = functions.ScoringStep(config, fused=False)
        self.term.open(self.term_rt)

    def checkpoint(self) -> tuple:
        return self.card_rt.checkpoint(), self.term_rt.checkpoint(), self.watermark

    def feed(self, events: list) -> list:
        out: list = []
        for role, row, event_ms in events:
            if role == "transactions":
                key, value, source = row
                self.card_rt.key = _bucket(value, "customer_id")
                routed = (_bucket(value, "terminal_id"), key, value, source)
                for item in self.card.process_element(routed, self.card_rt):
                    if isinstance(item, tuple) and item[0] is functions.DEAD_LETTERS:
                        out.append(item)
                        continue
                    self.term_rt.key = item[0]
                    payload = pickle.loads(pickle.dumps(item[1]))  # PICKLED_BYTE_ARRAY between the steps
                    out.extend(self.term.process_element1(payload, self.term_rt))
                self.watermark = max(self.watermark, event_ms - OUT_OF_ORDERNESS_MS)
            else:
                self.term_rt.key = _bucket(row[1], "terminal_id")
                out.extend(self.term.process_element2(row, self.term_rt))
            out.extend(self.fire(self.watermark))
        return out

    def fire(self, watermark: int) -> list:
        out: list = []
        for step, rt in ((self.card, self.card_rt), (self.term, self.term_rt)):
            for t, key in sorted(x for x in rt.timers if x[0] <= watermark):
                rt.timers.discard((t, key))
                rt.key = key
                out.extend(step.on_timer(t, rt))
        return out

    def end(self) -> list:
        """The final watermark of a bounded input: every timer fires, every waiting row is scored."""
        for rt in (self.card_rt, self.term_rt):
            for key in range(BUCKETS):
                rt.timers.add((1 << 62, key))
        return self.fire(1 << 62)


@pytest.fixture(scope="module")
def events():
    """50 days of a small handbook population with every label released 7 days later: the terminal
    features are non-zero from day 8 on, and the daily clean-ups run all along."""
    from fraudpipeline.data.handbook import HandbookConfig, transactions
    from fraudpipeline.replay.events import replay_events

    table = transactions(HandbookConfig(n_customers=120, n_terminals=150, days=50)).head(6000)
    out = []
    for i, e in enumerate(replay_events(table, label_delay_us=7 * 86_400_000_000, labels="all")):
        out.append((e.role, (e.key, e.value, f"{e.role}/0/{2 * i}"), e.event_time_us // 1000))
        if i % 1499 == 0:
            out.append(("transactions", (b"k", b'{"broken', f"transactions/0/{2 * i + 1}"), e.event_time_us // 1000))
    return out


@pytest.fixture(scope="module")
def reference(model_dir, events):
    seen: list[list[float]] = []
    original = functions.feature_vector

    def spy(*args):
        vector = original(*args)
        seen.append(vector)
        return vector

    functions.feature_vector = spy
    try:
        run = _Split(model_dir)
        out = run.feed(events) + run.end()
    finally:
        functions.feature_vector = original
    decisions = _decisions(out)
    scores = [d for d in decisions if d[0] == "score"]
    assert len(scores) > 5_000 and any(d[0] == "alert" for d in decisions)
    # Non-trivial: most rows have terminal features, the daily clean-ups ran, several buckets each.
    with_terminal = sum(1 for v in seen if any(v[9:15]))
    assert with_terminal > 0.5 * len(seen), f"only {with_terminal} of {len(seen)} rows had terminal features"
    assert sum(1 for v in seen if v[10] or v[12] or v[14]) > 100, "labels reached too few terminal risk features"
    assert len({k for k, _ in run.term_rt.data["log"].items()}) == BUCKETS
    return decisions


@pytest.mark.parametrize("crash_at", [700, 3100, 5200])
def test_split_layout_restored_mid_stream_commits_what_an_uninterrupted_run_does(
    model_dir, events, reference, monkeypatch, crash_at
):
    monkeypatch.setattr(functions, "COMPACT_EVERY", 400)  # compactions before and after the crash
    first = _Split(model_dir)
    committed = first.feed(events[:crash_at])  # before the checkpoint barrier: committed
    snapshot = first.checkpoint()
    first.feed(events[crash_at : crash_at + 400])  # after it: aborted with the crash
    second = _Split(model_dir, snapshot)
    committed += second.feed(events[crash_at:]) + second.end()
    assert _decisions(committed) == reference


def test_a_restore_into_another_bucket_count_is_refused_naming_the_flag(model_dir, events):
    first = _Split(model_dir, buckets=16)
    first.feed(events[:500])
    second = _Split(model_dir, first.checkpoint(), buckets=32)
    with pytest.raises(functions.RestoreRefused, match=r"--buckets: .* 16 bucket\(s\) .* now runs with 32"):
        second.feed(events[500:600])
    # The same count restores.
    third = _Split(model_dir, first.checkpoint(), buckets=16)
    assert third.feed(events[500:600])
