"""The job graph: Kafka sources and exactly-once Kafka sinks (Flink SQL tables) around the keyed steps.

Sources and sinks are declared as Kafka tables because the SQL connector gives what the
DataStream connector of PyFlink does not: each record's topic, partition and offset (dead
letters name them), the record key, and headers on the dead letters. The records cross into
Python as bytes and are parsed there, once, by `fraudpipeline.transactions`.

Event time: for transactions, the record's own `timestamp` field (read on the JVM side, to the
second, for watermarks only); for labels, the Kafka record's timestamp (when the label was
issued: a label's `timestamp` field is its transaction's time, days in the past, and would hold
the watermark back by that much). A record whose time cannot be read gets the epoch: it is late
for the watermark and moves nothing, and the Python step sends it to the dead-letter topic.
"""

from __future__ import annotations

from pyflink.common import Types
from pyflink.datastream import DataStream, KeyedStream, StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from fp_flink import functions, records
from fp_flink.config import JobConfig
from fp_flink.functions import BYTES

# RFC 3339 to epoch seconds on the JVM: fraction dropped (watermarks need no more), offset honoured.
_TX_EVENT_SECONDS = (
    "UNIX_TIMESTAMP(REGEXP_REPLACE(JSON_VALUE(CAST(`value` AS STRING), '$.timestamp'), "
    "'\\.[0-9]+', ''), 'yyyy-MM-dd''T''HH:mm:ssXXX')"
)
_EVENT_TIME = f"TO_TIMESTAMP_LTZ(CASE WHEN {_TX_EVENT_SECONDS} > 0 THEN {_TX_EVENT_SECONDS} ELSE 0 END * 1000, 3)"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _with(options: dict[str, str]) -> str:
    return ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in options.items())


def source_options(config: JobConfig, topic: str) -> dict[str, str]:
    opts = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": config.bootstrap_servers,
        "properties.group.id": config.group_id,
        # First start: from the beginning; later starts: the group's committed offsets (committed on
        # checkpoints). A restore from a checkpoint or savepoint uses the offsets stored there.
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "properties.isolation.level": "read_committed",
        "key.format": "raw",
        "key.fields": "key",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
    }
    if config.bounded:
        opts["scan.bounded.mode"] = "latest-offset"
    return opts


def sink_options(config: JobConfig, topic: str, role: str) -> dict[str, str]:
    return {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": config.bootstrap_servers,
        "key.format": "raw",
        "key.fields": "key",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        # Kafka transactions tied to checkpoints: consumers reading read_committed see each output
        # once, after the checkpoint that covers it.
        "sink.delivery-guarantee": "exactly-once",
        "sink.transactional-id-prefix": f"{config.transactional_id_prefix}.{role}",
        # At most the broker's transaction.max.timeout.ms (15 min by default), well above a checkpoint.
        "properties.transaction.timeout.ms": "900000",
    }


def declare_tables(t_env: StreamTableEnvironment, config: JobConfig) -> None:
    wm = f"INTERVAL '{max(config.max_out_of_orderness_ms // 1000, 0)}' SECOND"
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE fp_transactions (
          `key` BYTES, `value` BYTES,
          `topic` STRING METADATA VIRTUAL, `partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL,
          `event_time` AS {_EVENT_TIME},
          WATERMARK FOR `event_time` AS `event_time` - {wm}
        ) WITH ({_with(source_options(config, config.transactions_topic))})""")
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE fp_labels (
          `key` BYTES, `value` BYTES,
          `topic` STRING METADATA VIRTUAL, `partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL,
          `issued` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
          WATERMARK FOR `issued` AS `issued` - {wm}
        ) WITH ({_with(source_options(config, config.labels_topic))})""")
    outputs = [
        ("fp_alerts", config.alerts_topic, "alerts", ""),
        ("fp_dead_letters", config.dead_letter_topic, "dead-letter", ", `headers` MAP<STRING, BYTES> METADATA"),
    ]
    if config.scores_topic:
        outputs.append(("fp_scores", config.scores_topic, "scores", ""))
    for table, topic, role, extra in outputs:
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE {table} (`key` BYTES, `value` BYTES{extra}) "
            f"WITH ({_with(sink_options(config, topic, role))})"
        )


def build(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, config: JobConfig) -> str:
    """Add the whole job to `env`; returns the layout used ("fused" or "split")."""
    t_env.get_config().set("table.exec.source.idle-timeout", f"{config.idle_timeout_ms} ms")
    t_env.get_config().set("table.local-time-zone", "UTC")
    declare_tables(t_env, config)
    layout = config.resolved_layout(env.get_parallelism())
    split = layout == "split"
    buckets = config.buckets if split else 1
    # Where each record came from travels as one "topic/partition/offset" string: every field of a
    # row costs a conversion on its way into Python, and this one is read only for dead letters.
    # The payload is a Flink tuple, which holds no null: a missing key or value (a tombstone)
    # travels as empty bytes, flagged in the source string so that a dead letter keeps it null.
    source = (
        "CONCAT_WS('/', `topic`, CAST(`partition` AS STRING), CAST(`offset` AS STRING)) || "
        "CASE WHEN `key` IS NULL THEN '/" + records.NO_KEY + "' ELSE '' END || "
        "CASE WHEN `value` IS NULL THEN '/" + records.NO_VALUE + "' ELSE '' END"
    )
    key, value = "COALESCE(`key`, X'')", "COALESCE(`value`, X'')"
    payload = f"({key}, {value}, {source})"
    if split:
        # Step 1, keyed by card bucket: the customer half. Step 2, keyed by terminal bucket: the
        # terminal half, labels, batching and scoring. The buckets are computed here, on the JVM;
        # the card step passes the terminal bucket on with its output.
        tx_query = (
            f"SELECT {_bucket('customer_id', buckets)} AS k, ROW"
            f"({_bucket('terminal_id', buckets)}, {key}, {value}, {source}) AS payload "
            f"FROM fp_transactions"
        )
        label_query = f"SELECT {_bucket('terminal_id', buckets)} AS k, ROW{payload} AS payload FROM fp_labels"
    else:
        tx_query = f"SELECT 0 AS k, ROW{payload} AS payload FROM fp_transactions"
        label_query = f"SELECT 0 AS k, ROW{payload} AS payload FROM fp_labels"
    # The payload crosses into Python as a tuple: PyFlink builds a Row object field by field, which
    # measured several microseconds a record.
    source_row = Types.TUPLE([BYTES, BYTES, Types.STRING()])
    tx_row = Types.ROW([Types.INT(), Types.TUPLE([Types.INT(), BYTES, BYTES, Types.STRING()]) if split else source_row])
    transactions = keyed_on_the_jvm(t_env.to_append_stream(t_env.sql_query(tx_query), tx_row))
    labels = keyed_on_the_jvm(
        t_env.to_append_stream(t_env.sql_query(label_query), Types.ROW([Types.INT(), source_row]))
    )

    if split:
        cards = (
            transactions.process(functions.CardStep(config), output_type=functions.CARD_STEP_OUTPUT)
            .name("card features")
            .uid("card-features")
        )
        card_dead = cards.get_side_output(functions.DEAD_LETTERS)
        scored = (
            keyed_on_the_jvm(cards)
            .connect(labels)
            .process(functions.ScoringStep(config, fused=False), output_type=functions.KEYED_RECORD)
            .name("terminal features and scoring")
            .uid("terminal-scoring")
        )
        dead = scored.get_side_output(functions.DEAD_LETTERS).union(card_dead)
    else:
        scored = (
            transactions.connect(labels)
            .process(functions.ScoringStep(config, fused=True), output_type=functions.KEYED_RECORD)
            .name("features and scoring")
            .uid("features-scoring")
        )
        dead = scored.get_side_output(functions.DEAD_LETTERS)

    statements = t_env.create_statement_set()
    statements.add_insert("fp_alerts", _table(t_env, scored))
    statements.add_insert("fp_dead_letters", _table(t_env, dead))
    if config.scores_topic:
        statements.add_insert("fp_scores", _table(t_env, scored.get_side_output(functions.SCORES)))
    statements.attach_as_datastream()
    return layout


def _bucket(field: str, buckets: int) -> str:
    """SQL: the record's `field` (an id inside the JSON value) to a bucket in [0, buckets).

    Java's String.hashCode is fixed by its specification, so a bucket survives a restore on
    another JVM; an id that is missing goes to bucket 0 and its record to the dead letters."""
    if buckets <= 1:
        return "0"
    return f"ABS(MOD(HASH_CODE(COALESCE(JSON_VALUE(CAST(`value` AS STRING), '$.{field}'), '')), {buckets}))"


def keyed_on_the_jvm(stream: DataStream) -> KeyedStream:
    """A KeyedStream of `Row(key, payload)` rows keyed by their first field, the payload going on.

    PyFlink's own `key_by` computes the key with a Python function on the producing thread: in
    thread mode that thread and the keyed step's then take the interpreter lock in turn for every
    record, which measured costlier than the keyed step's own work. The key is a column here,
    and the Java side keys by it (the same selector `key_by` uses after its Python function).
    """
    from pyflink.common.typeinfo import _from_java_type
    from pyflink.java_gateway import get_gateway

    key_type, payload_type = _from_java_type(
        stream._j_data_stream.getTransformation().getOutputType()
    ).get_field_types()
    j_keyed = stream._j_data_stream.keyBy(
        get_gateway().jvm.KeyByKeySelector(), Types.ROW([key_type]).get_java_type_info()
    )
    return KeyedStream(j_keyed, payload_type, stream)


def _table(t_env: StreamTableEnvironment, stream: DataStream):
    return t_env.from_data_stream(stream)
