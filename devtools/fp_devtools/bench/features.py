"""Microbenchmark of the online feature states: `python -m fp_devtools.bench.features [--json]`.

Replays 48,000 transactions over 200 cards and 200 terminals (4 a day each, 60 days, so each
state holds a full window of about 125-150 entries) and reports the cost of one customer plus
one terminal `update`, the same with each state unpickled before and pickled after (as when
Flink state is read and written per record), and the pickled sizes. Best of `--repeat` runs;
the figures in docs/features.md come from here. Not a test: timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time

from fraudpipeline.features.definitions import US_PER_DAY, US_PER_HOUR
from fraudpipeline.features.online import CustomerState, TerminalState

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
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
