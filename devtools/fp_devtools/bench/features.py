"""Microbenchmark of the online feature states: `python -m fp_devtools.bench.features [--json]`.

Replays 48,000 transactions over 200 cards and 200 terminals (4 a day each, 60 days, so each
state holds a full window of about 125-150 entries) and reports the cost of one customer plus
one terminal `update`, the same with each state unpickled before and pickled after (as when
Flink state is read and written per record), and the pickled sizes. Best of `--repeat` runs;
the figures in docs/features.md come from here. Not a test: timings depend on the machine's load.

`--hot` measures hot keys instead (issue 24, item 5): one terminal with 1,000 to 1,000,000
records in its 38-day history and one card with 1,000 to 100,000 in 31 days, per-call cost of
`update` (and a terminal's `add_label`), median of batches (`hot_key`, also used by the unit
test that holds the growth to log n).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from array import array
from statistics import median

from fraudpipeline.features.definitions import US_PER_DAY, US_PER_HOUR
from fraudpipeline.features.online import _SEP, CustomerState, TerminalState

T0 = 1_532_520_000_000_000  # 2018-07-25T12:00:00Z


def _events(keys: int, days: int, per_day: int) -> list[tuple[int, int, str]]:
    out = []
    for d in range(days):
        for k in range(per_day):
            for key in range(keys):
                out.append((T0 + d * US_PER_DAY + k * 5 * US_PER_HOUR + key * 1_000, key, str(10_000_000 + len(out))))
    return out


def _run(events: list[tuple[int, int, str]], keys: int, cycle: bool) -> tuple[float, CustomerState, TerminalState]:
    customers: list = [CustomerState() for _ in range(keys)]
    terminals: list = [TerminalState() for _ in range(keys)]
    if cycle:
        customers = [pickle.dumps(c, protocol=5) for c in customers]
        terminals = [pickle.dumps(t, protocol=5) for t in terminals]
    started = time.perf_counter()
    for t, key, tid in events:
        c = pickle.loads(customers[key]) if cycle else customers[key]
        term = pickle.loads(terminals[key]) if cycle else terminals[key]
        c.update(t, 12.5, tid)
        term.update(t, tid)
        if cycle:
            customers[key] = pickle.dumps(c, protocol=5)
            terminals[key] = pickle.dumps(term, protocol=5)
    per_tx = (time.perf_counter() - started) / len(events)
    c0 = pickle.loads(customers[0]) if cycle else customers[0]
    t0 = pickle.loads(terminals[0]) if cycle else terminals[0]
    return per_tx, c0, t0


def measure(repeat: int = 3, keys: int = 200, days: int = 60, per_day: int = 4) -> dict:
    events = _events(keys, days, per_day)
    update = min(_run(events, keys, False)[0] for _ in range(repeat))
    cycles = [_run(events, keys, True) for _ in range(repeat)]
    _, customer, terminal = cycles[0]
    return {
        "transactions": len(events),
        "update_us": round(update * 1e6, 2),
        "update_with_pickle_cycle_us": round(min(c[0] for c in cycles) * 1e6, 2),
        "customer_entries": len(customer),
        "customer_pickled_bytes": len(pickle.dumps(customer, protocol=5)),
        "terminal_entries": len(terminal),
        "terminal_pickled_bytes": len(pickle.dumps(terminal, protocol=5)),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


# ------------------------------------------------------------------ hot keys (issue 24, item 5)
# One key with n records in its retained history (terminal: 38 days, card: 31 days), built
# directly from the pickled form (so that the quadratic cost of filling a big state with an
# O(n) implementation is not paid), then a run of in-order updates at the same rate, each
# evicting about one record as a real stream does; for the terminal each update also labels the
# transaction 7 days back. The cost per call is the median over batches, so that other work on
# the machine moves it less.

HOT_SIZES = (1_000, 10_000, 100_000, 1_000_000)


def _hot_state(kind: str, n: int, span_us: int) -> tuple[object, int, int]:
    """A state holding `n` records evenly spread over `span_us`, its time step and next time."""
    step = max(1, span_us // n)
    start = T0
    times = array("q", range(start, start + n * step, step))
    ids = _SEP.join(f"h{i}" for i in range(n))
    if kind == "terminal":
        frauds = array("b", (1 if i % 50 == 0 else 0 for i in range(n)))
        state = TerminalState.__new__(TerminalState)
        state.__setstate__((times.tobytes(), frauds.tobytes(), ids, None))
    else:
        amounts = array("d", (round(5 + (i * 7919 % 20_000) / 100, 2) for i in range(n)))
        state = CustomerState.__new__(CustomerState)
        state.__setstate__((times.tobytes(), amounts.tobytes(), ids))
    return state, step, start + n * step


def hot_key(kind: str, n: int, calls: int | None = None, batch: int | None = None) -> dict:
    """Per-call cost (us, median of batches) of `update` (and, for a terminal, `add_label`)."""
    span = (38 if kind == "terminal" else 31) * US_PER_DAY - US_PER_HOUR
    state, step, t = _hot_state(kind, n, span)
    if calls is None:  # enough calls for a steady figure, without hours for an O(n) implementation
        calls = max(60, min(20_000, 40_000_000 // n))
    batch = batch or max(10, calls // 20)
    delay = 7 * US_PER_DAY
    label_back = delay // step  # the transaction 7 days back, in records
    i = n
    update, label = [], []
    done = 0
    while done < calls:
        started = time.perf_counter()
        if kind == "terminal":
            for k in range(batch):
                state.update(t + k * step, f"h{i + k}")
        else:
            for k in range(batch):
                state.update(t + k * step, 12.34 + k % 7, f"h{i + k}")
        update.append((time.perf_counter() - started) / batch)
        if kind == "terminal":
            started = time.perf_counter()
            for k in range(batch):
                state.add_label(t + k * step - label_back * step, f"h{i + k - label_back}", k % 2)
            label.append((time.perf_counter() - started) / batch)
        t += batch * step
        i += batch
        done += batch
    out = {"kind": kind, "records": n, "kept": len(state), "calls": done, "update_us": round(median(update) * 1e6, 2)}
    if label:
        out["add_label_us"] = round(median(label) * 1e6, 2)
    return out


def measure_hot(terminal_sizes=HOT_SIZES, customer_sizes=HOT_SIZES[:3]) -> list[dict]:
    rows = [hot_key("terminal", n) for n in terminal_sizes]
    rows += [hot_key("customer", n) for n in customer_sizes]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--hot",
        action="store_true",
        help="hot keys instead: one terminal (1k..1M records in 38 days) and one card (1k..100k in 31 days)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="with --hot: the terminal sizes (cards: those <= 100k)")
    args = parser.parse_args(argv)
    if args.hot:
        sizes = tuple(args.sizes or HOT_SIZES)
        rows = measure_hot(sizes, tuple(n for n in sizes if n <= 100_000))
        if args.json:
            print(json.dumps({"hot": rows, "load_average_1min": round(os.getloadavg()[0], 2)}))
            return
        print(f"hot keys, per call, median of batches (load average {os.getloadavg()[0]:.2f}):")
        for row in rows:
            extra = f", add_label {row['add_label_us']:>9.2f} us" if "add_label_us" in row else ""
            print(f"  {row['kind']:8} {row['records']:>9,} records: update {row['update_us']:>9.2f} us{extra}")
        return
    result = measure(args.repeat)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['transactions']} transactions (load average {result['load_average_1min']}):")
    print(f"  one customer + one terminal update: {result['update_us']} us")
    print(f"  the same, each state unpickled before and pickled after: {result['update_with_pickle_cycle_us']} us")
    print(
        f"  pickled: customer {result['customer_entries']} entries {result['customer_pickled_bytes']} B, "
        f"terminal {result['terminal_entries']} entries {result['terminal_pickled_bytes']} B"
    )


if __name__ == "__main__":
    main()
