"""The ceiling: a plain confluent-kafka producer, configured as the ingest service's, with no HTTP.

Run as its own process (`python -m fp_devtools.bench.ingest.plain`), like the load generator:
- `--rate R`: one record every 1/R s, latency from produce() to its delivery report (what a
  single-record request cannot beat);
- without a rate: records flat out for `--duration` s (produce, poll, flush), records/s.

Prints one JSON object in the load generator's shape.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from confluent_kafka import Producer

    parser = argparse.ArgumentParser(description="plain Kafka producer baseline (JSON on stdout)")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", required=True, help="JSON list of [key, value] strings, cycled")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--linger-ms", type=float, default=1.0)
    args = parser.parse_args(argv)
    records = [(k.encode(), v.encode()) for k, v in json.load(open(args.records))]
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": args.linger_ms,
            "socket.nagle.disable": True,
            "queue.buffering.max.messages": 1_000_000,
            "batch.num.messages": 10_000,
        }
    )
    producer.produce(args.topic, b"warm-up")
    producer.flush(30)
    latencies: list[float] = []
    failed = 0

    def delivered(err, _msg, sent: float) -> None:
        nonlocal failed
        if err is None:
            latencies.append(time.perf_counter() - sent)
        else:
            failed += 1

    t0 = time.perf_counter()
    n = 0
    if args.rate:
        total = int(args.rate * args.duration)
        while n < total:
            due = t0 + n / args.rate
            now = time.perf_counter()
            if now < due:
                # (librdkafka rounds a sub-millisecond poll timeout to 0: sleep instead of spinning)
                producer.poll(0)
                time.sleep(min(0.001, due - now))
                continue
            key, value = records[n % len(records)]
            producer.produce(args.topic, value, key, on_delivery=lambda e, m, s=due: delivered(e, m, s))
            producer.poll(0)
            n += 1
    else:
        deadline = t0 + args.duration
        while time.perf_counter() < deadline:
            for _ in range(1000):
                key, value = records[n % len(records)]
                sent = time.perf_counter()
                try:
                    producer.produce(args.topic, value, key, on_delivery=lambda e, m, s=sent: delivered(e, m, s))
                except BufferError:
                    producer.poll(0.01)
                    continue
                n += 1
            producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000
    pct = np.percentile(lat, [50, 95, 99, 100]) if len(lat) else [float("nan")] * 4
    out = {
        "mode": "open_loop" if args.rate else "flat_out",
        "target_rate": args.rate,
        "requests": n,
        "ok": len(lat),
        "errors": {"delivery_failed": failed} if failed else {},
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(len(lat) / elapsed, 1),
        "rows_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(float(pct[0]), 3),
        "p95_ms": round(float(pct[1]), 3),
        "p99_ms": round(float(pct[2]), 3),
        "max_ms": round(float(pct[3]), 3),
        "client_cpu_s": round(time.process_time(), 3),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
