"""`fraudpipe send` before the network: reading JSON or JSON lines, validating, keying, timestamps."""

from __future__ import annotations

import base64
import io
import json

import pytest
from typer.testing import CliRunner

from fraudpipeline.cli import app
from fraudpipeline.ingest.client import BridgeProducer, OutRecord
from fraudpipeline.ingest.send import InputError, build_records, parse_records, read_source

TX = {
    "transaction_id": "tx-1",
    "timestamp": "2018-07-25T13:45:00.250Z",
    "customer_id": "c-1",
    "terminal_id": "t-9",
    "amount": 5.0,
}


def test_inputs_json_object_array_and_lines():
    assert parse_records(json.dumps(TX), "x") == [(0, TX)]
    assert parse_records(json.dumps([TX, TX]), "x") == [(0, TX), (0, TX)]
    lines = "\n".join([json.dumps(TX), "", json.dumps(TX)])
    assert parse_records(lines, "x") == [(1, TX), (3, TX)]
    with pytest.raises(InputError, match="x, line 2: not JSON"):
        parse_records(json.dumps(TX) + "\n{broken", "x")
    with pytest.raises(InputError, match="empty"):
        parse_records("  \n", "x")


def test_sources_argument_file_and_stdin(tmp_path):
    assert read_source(json.dumps(TX)) == (json.dumps(TX), "the argument")
    path = tmp_path / "txs.jsonl"
    path.write_text(json.dumps(TX))
    assert read_source(str(path)) == (json.dumps(TX), str(path))
    assert read_source("-", io.StringIO("data")) == ("data", "stdin")
    with pytest.raises(InputError, match="neither JSON"):
        read_source(str(tmp_path / "missing.json"))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_source_on_a_terminal_says_what_to_give():
    with pytest.raises(InputError, match="no records given"):
        read_source(None, _Tty())


def test_records_are_keyed_and_timestamped_as_v1_does():
    records, ids, errors = build_records([(0, TX), (0, {**TX, "customer_id": 42, "transaction_id": 7})], "transactions")
    assert errors == []
    assert ids == ["tx-1", "7"]
    assert records[0] == OutRecord(b"c-1", json.dumps(TX, separators=(",", ":")).encode(), None)  # the server's now
    assert records[1].key == b"42"
    [event], _, _ = build_records([(0, TX)], "transactions", event_time=True)
    assert event.timestamp_ms == 1532526300250  # 2018-07-25T13:45:00.250Z
    label = {
        "transaction_id": "tx-1",
        "customer_id": "c-1",
        "terminal_id": "t-9",
        "timestamp": TX["timestamp"],
        "fraud": 0,
    }
    [rec], _, _ = build_records([(0, label)], "labels")
    assert (rec.key, rec.timestamp_ms) == (b"t-9", None)


def test_every_invalid_record_is_named_with_line_field_and_fix():
    _, _, errors = build_records([(1, TX), (2, {**TX, "amount": -1}), (3, "nope")], "transactions")
    assert errors[0].startswith("record 2 (line 2): invalid transaction: field 'amount'")
    assert "expected a finite number >= 0" in errors[0]
    assert errors[1] == "record 3 (line 3): invalid transaction: field '(document)' the record must be a JSON object"


def test_bridge_producer_body_is_the_binary_format_with_timestamps():
    out = BridgeProducer._body([OutRecord(b"k", b"\x00v", 5), OutRecord(None, None)])
    assert out == {
        "records": [{"value": base64.b64encode(b"\x00v").decode(), "key": "aw==", "timestamp": 5}, {"value": None}]
    }


def test_send_cli_refuses_invalid_input_and_sends_nothing(tmp_path):
    bad = json.dumps({**TX, "timestamp": "yesterday"})
    result = CliRunner().invoke(app, ["send", bad, "--topic", "t", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "field 'timestamp'" in result.output and "nothing sent" in result.output


def test_send_cli_needs_a_topic():
    result = CliRunner().invoke(app, ["send", json.dumps(TX)])
    assert result.exit_code == 2
    assert "no topic" in result.output
