"""Wire schema of card transactions and feedback labels (JSON), with validation.

The documented form is docs/transactions.md. `parse_transaction` / `parse_label` take a JSON
document (bytes or str) or a dict and return a model, or raise `InvalidRecordError` whose
message names the bad field and says how to fix it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FLOAT32_MAX = 3.4028234663852886e38  # float(numpy.finfo(numpy.float32).max)


def _only_strings(value: Any) -> Any:
    # pydantic would also take a number as Unix time; the wire format is RFC 3339 text only.
    if not isinstance(value, (str, datetime)):
        raise ValueError("must be an RFC 3339 string")
    return value


def _id_text(value: Any) -> Any:
    # Identifiers may come as JSON integers (the handbook data uses ints); kept as text.
    if isinstance(value, bool):
        raise ValueError("must be a string or an integer")
    if isinstance(value, int):
        return str(value)
    return value


Identifier = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=128)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_only_strings)]

# How to fix each field, appended to validation messages.
_FIXES: dict[str, str] = {
    "transaction_id": 'a non-empty string or integer of at most 128 characters, e.g. "tx-000042"',
    "customer_id": 'the card identifier: a non-empty string or integer, e.g. "c-1234"',
    "terminal_id": 'the merchant terminal identifier: a non-empty string or integer, e.g. "t-987"',
    "timestamp": 'an RFC 3339 date-time with a UTC offset, e.g. "2018-07-25T13:45:00Z" or "2018-07-25T15:45:00+02:00"',
    "amount": "a finite number >= 0 and <= 3.4e38 (the largest float32, what the model takes), e.g. 57.16",
    "fraud": "0 (genuine) or 1 (fraud)",
}


class InvalidRecordError(ValueError):
    """A transaction or label that does not match the wire schema.

    `field` is the first bad field (dotted path), `errors` all of them as (field, message).
    """

    def __init__(self, kind: str, errors: list[tuple[str, str]]):
        self.kind = kind
        self.errors = errors
        self.field = errors[0][0] if errors else ""
        super().__init__(f"invalid {kind}: " + "; ".join(f"field '{f}' {m}" for f, m in errors))


class Transaction(BaseModel):
    """One card payment as it arrives on the transactions topic."""

    model_config = ConfigDict(extra="allow", frozen=True)

    transaction_id: Identifier = Field(description="Unique id of the transaction.")
    timestamp: Timestamp = Field(description="When the payment happened (RFC 3339, with offset).")
    customer_id: Identifier = Field(description="The card (key of the customer features).")
    terminal_id: Identifier = Field(description="The merchant terminal (key of the terminal features).")
    # Bounded by float32's largest value: the model scores float32 vectors, and a larger amount
    # would become infinity there (the scoring service refuses it, see docs/serving-api.md).
    amount: float = Field(ge=0, le=FLOAT32_MAX, description="Amount of the payment, >= 0.")

    @field_validator("amount")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value

    @property
    def event_time_us(self) -> int:
        return event_time_us(self.timestamp)

    @property
    def extra(self) -> dict[str, Any]:
        """Fields beyond the schema, kept as they came."""
        return dict(self.__pydantic_extra__ or {})


class Label(BaseModel):
    """Feedback on one earlier transaction (known only after a delay)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    transaction_id: Identifier = Field(description="The labelled transaction.")
    customer_id: Identifier = Field(description="Its card.")
    terminal_id: Identifier = Field(description="Its terminal (labels update the terminal features).")
    timestamp: Timestamp = Field(description="The transaction's own time (RFC 3339), not the label's.")
    fraud: Literal[0, 1] = Field(description="1 fraud, 0 genuine.")

    @field_validator("fraud", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be the integer 0 or 1")
        return value

    @property
    def event_time_us(self) -> int:
        return event_time_us(self.timestamp)


def event_time_us(ts: datetime) -> int:
    """Microseconds since the epoch, UTC, exactly (no float rounding)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _errors(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(document)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is missing"
        elif "input" in err and err["type"] not in ("json_invalid", "model_type"):
            msg = f"{msg} (got {err['input']!r})"
        top = str(err["loc"][0]) if err["loc"] else ""
        if top in _FIXES:
            msg = f"{msg}; expected {_FIXES[top]}"
        elif err["type"] == "json_invalid":
            msg = f"{msg}; send one JSON object per record"
        elif err["type"] == "model_type":
            msg = "the record must be a JSON object"
        out.append((field, msg))
    return out


def _parse(model: type[BaseModel], kind: str, data: bytes | str | dict[str, Any]) -> Any:
    try:
        if isinstance(data, (bytes, bytearray, str)):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecordError(kind, _errors(exc)) from None


def parse_transaction(data: bytes | str | dict[str, Any]) -> Transaction:
    """Validate one transaction (JSON text or dict); raises InvalidRecordError naming the field."""
    return _parse(Transaction, "transaction", data)


_CANONICAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def _fast_id(value: Any) -> str | None:
    if type(value) is str:
        return value if 0 < len(value) <= 128 else None
    if type(value) is int:
        text = str(value)
        return text if len(text) <= 128 else None
    return None


def transaction_fields(data: bytes | str) -> tuple[str, int, str, str, float]:
    """(transaction_id, event_time_us, customer_id, terminal_id, amount) of one JSON transaction.

    The streaming job's hot path: the same result as `parse_transaction` (a property test holds
    them equal), about four times faster. Records in the canonical form (string or integer ids,
    an RFC 3339 time with 'T' and an offset, a JSON number amount) are read directly; anything
    else goes through the model, which accepts it the same way or raises InvalidRecordError.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if type(doc) is dict:
        tx_id = _fast_id(doc.get("transaction_id"))
        cid = _fast_id(doc.get("customer_id"))
        tid = _fast_id(doc.get("terminal_id"))
        ts = doc.get("timestamp")
        amount = doc.get("amount")
        if (
            tx_id is not None
            and cid is not None
            and tid is not None
            and type(ts) is str
            and _CANONICAL_TIME.fullmatch(ts)
            and (type(amount) is float or type(amount) is int)
            and 0 <= amount <= FLOAT32_MAX
        ):
            try:
                moment = datetime.fromisoformat(ts)
            except ValueError:
                moment = None  # e.g. February 30th: the model says why
            if moment is not None:
                return tx_id, event_time_us(moment), cid, tid, float(amount)
    tx = parse_transaction(data)
    return tx.transaction_id, tx.event_time_us, tx.customer_id, tx.terminal_id, tx.amount


def parse_label(data: bytes | str | dict[str, Any]) -> Label:
    """Validate one label (JSON text or dict); raises InvalidRecordError naming the field."""
    return _parse(Label, "label", data)
