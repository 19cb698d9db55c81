"""The HTTP API's request and response models (documented in docs/serving-api.md).

Field order is the model contract: `Features` lists the 15 features exactly as
`fraudpipeline.features.FEATURE_NAMES` does (a unit test holds them equal).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudpipeline.features import FEATURE_NAMES

MAX_BATCH_ROWS = 10_000
# Every value goes into a float32 matrix for XGBoost: bounded to what float32 holds, so no valid
# request can overflow (an unbounded integer made np.fromiter raise, a 500 for every request
# merged into the same batch). Counts up to 2**24 are exact in float32; amounts up to float32's
# largest finite value stay finite.
MAX_COUNT = 2**24
FLOAT32_MAX = 3.4028234663852886e38  # float(numpy.finfo(numpy.float32).max)

# Strict numbers: JSON integers and decimals, never booleans or numeric strings (pydantic's lax
# mode reads `true` as 1; Schemathesis found it). Counts and flags are numbers with no fraction
# (`3` and `3.0` are accepted, `3.5` is not), so the streaming job may send its floats as they are.
Flag = Annotated[float, Field(strict=True, ge=0, le=1, multiple_of=1)]
Count = Annotated[float, Field(strict=True, ge=0, le=MAX_COUNT, multiple_of=1)]
Amount = Annotated[float, Field(strict=True, ge=0, le=FLOAT32_MAX)]
Ratio = Annotated[float, Field(strict=True, ge=0, le=1)]


class Features(BaseModel):
    """One transaction's feature vector (the handbook features, computed by the stream job)."""

    # Unknown fields are errors so that a misspelt feature is reported, never silently ignored.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    tx_amount: Amount = Field(description="Transaction amount")
    tx_during_weekend: Flag = Field(description="1 if the transaction is on a Saturday or Sunday")
    tx_during_night: Flag = Field(description="1 if the transaction hour is 0..6")
    customer_nb_tx_1day: Count = Field(description="Card's transactions in the last day (this one included)")
    customer_avg_amount_1day: Amount = Field(description="Card's mean amount over the last day")
    customer_nb_tx_7day: Count = Field(description="Card's transactions in the last 7 days")
    customer_avg_amount_7day: Amount = Field(description="Card's mean amount over the last 7 days")
    customer_nb_tx_30day: Count = Field(description="Card's transactions in the last 30 days")
    customer_avg_amount_30day: Amount = Field(description="Card's mean amount over the last 30 days")
    terminal_nb_tx_1day: Count = Field(description="Terminal's transactions in (t-8d, t-7d]")
    terminal_risk_1day: Ratio = Field(description="Terminal's fraud ratio in (t-8d, t-7d]")
    terminal_nb_tx_7day: Count = Field(description="Terminal's transactions in (t-14d, t-7d]")
    terminal_risk_7day: Ratio = Field(description="Terminal's fraud ratio in (t-14d, t-7d]")
    terminal_nb_tx_30day: Count = Field(description="Terminal's transactions in (t-37d, t-7d]")
    terminal_risk_30day: Ratio = Field(description="Terminal's fraud ratio in (t-37d, t-7d]")


# One C-level call returns a row's values as a tuple in FEATURE_NAMES order.
feature_values = attrgetter(*FEATURE_NAMES)


class ScoreBatchRequest(BaseModel):
    """Many feature vectors scored in one call, answered in the same order."""

    model_config = ConfigDict(extra="forbid")

    rows: list[Features] = Field(min_length=1, max_length=MAX_BATCH_ROWS, description="Feature vectors to score")


class Score(BaseModel):
    """The model's answer for one feature vector."""

    fraud_probability: float = Field(description="P(fraud) from the model, in [0, 1]")
    is_fraud: bool = Field(description="fraud_probability >= the serving threshold")
    model_version: str = Field(description="Version part of the model's BentoML tag")


class ScoreBatch(BaseModel):
    results: list[Score] = Field(description="One score per input row, in input order")


class ModelInfo(BaseModel):
    """What `/v1/model` reports about the model being served."""

    tag: str
    name: str
    version: str
    features: list[str]
    threshold: float
    threshold_source: Literal["model", "env"]
    metrics: dict[str, Any]
    train_window: dict[str, Any]
    xgboost_params: dict[str, Any]
    created_at: str
    synthetic: bool = Field(default=False, description="True for the stand-in model of the tests and benchmark")


class ErrorDetail(BaseModel):
    """One problem with a request."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Dotted path of the bad field, e.g. rows.3.tx_amount, or Content-Type, body")
    message: str = Field(description="What is wrong and how to fix it")
    type: str = Field(description="Machine-readable kind, e.g. missing, less_than_equal, unsupported_media_type")


class ErrorResponse(BaseModel):
    """The body of every error this service answers (documented in the OpenAPI schema at /docs.json)."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="Summary")
    detail: list[ErrorDetail] = Field(default_factory=list, description="Each problem, when there are several")


assert list(Features.model_fields) == FEATURE_NAMES, "Features must follow FEATURE_NAMES"
