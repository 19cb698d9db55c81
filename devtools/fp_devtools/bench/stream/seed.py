"""The seed-style pipeline the job is measured against: one consumer, one HTTP scoring call per transaction.

What a first version of a fraud pipeline often is: a Kafka consumer that computes the features in
dictionaries of the same online states, POSTs each transaction's vector to the scoring service's
`/score`, and produces alerts and scores as it goes (no checkpoints, no transactions: at-least-once
at best). Run as `python -m fp_devtools.bench.stream.seed ARGS` by the benchmark.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import orjson


def main(argv: list[str]) -> int:
    import requests
    from confluent_kafka import Consumer, Producer

    from fraudpipeline.features import FEATURE_NAMES
    from fraudpipeline.features.online import CustomerState, RecordRefused, TerminalState, feature_vector
    from fraudpipeline.transactions import InvalidRecordError, parse_label, parse_transaction

    p = argparse.ArgumentParser()
    for flag in (
        "--bootstrap-servers",
        "--transactions-topic",
        "--labels-topic",
        "--alerts-topic",
        "--scores-topic",
        "--dead-letter-topic",
        "--serving-url",
        "--group-id",
    ):
        p.add_argument(flag, required=True)
    a = p.parse_args(argv)
    consumer = Consumer(
        {
            "bootstrap.servers": a.bootstrap_servers,
            "group.id": a.group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([a.transactions_topic, a.labels_topic])
    producer = Producer({"bootstrap.servers": a.bootstrap_servers, "linger.ms": 1})
    session = requests.Session()
    url = a.serving_url.rstrip("/") + "/score"
    customers: dict[str, CustomerState] = {}
    terminals: dict[str, TerminalState] = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        for msg in consumer.consume(500, timeout=0.2):
            if msg.error():
                continue
            try:
                if msg.topic() == a.labels_topic:
                    label = parse_label(msg.value())
                    terminals.setdefault(label.terminal_id, TerminalState()).add_label(
                        label.event_time_us, label.transaction_id, label.fraud
                    )
                    continue
                tx = parse_transaction(msg.value())
                t = tx.event_time_us
                cust = customers.setdefault(tx.customer_id, CustomerState())
                term = terminals.setdefault(tx.terminal_id, TerminalState())
                c6 = cust.update(t, tx.amount, tx.transaction_id)
                t6 = term.update(t, tx.transaction_id)
            except (InvalidRecordError, RecordRefused) as exc:
                producer.produce(
                    a.dead_letter_topic, value=msg.value(), key=msg.key(), headers={"fraudpipe.error.reason": str(exc)}
                )
                continue
            vector = feature_vector(t, tx.amount, c6, t6)
            body = session.post(
                url,
                data=orjson.dumps(dict(zip(FEATURE_NAMES, vector))),
                headers={"Content-Type": "application/json"},
                timeout=10,
            ).json()
            decided = time.time()
            key = tx.customer_id.encode()
            producer.produce(
                a.scores_topic,
                key=key,
                value=orjson.dumps(
                    {
                        "transaction_id": tx.transaction_id,
                        "score": body["fraud_probability"],
                        "is_fraud": body["is_fraud"],
                        "decided_at_ms": int(decided * 1000),
                    }
                ),
            )
            if body["is_fraud"]:
                producer.produce(
                    a.alerts_topic,
                    key=key,
                    value=orjson.dumps({"transaction": orjson.loads(msg.value()), "score": body["fraud_probability"]}),
                )
            producer.poll(0)
    producer.flush(30)
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
