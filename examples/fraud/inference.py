"""The fraud example's inference pipelines: online requests for live transactions, batch scoring.

Online, a payment system sends the card number and the raw live transaction (amount, category,
time, place) and nothing derived. The deployment looks up the card's rolling aggregates, latest
transaction and profile in the online store, computes the on-demand features (amount bin,
category code, time since and distance from the previous transaction, distance from home) with
the feature view's functions, applies its fitted transformations and scores.

The aggregates in the online store are those as of the card's previous transaction (the feature
pipeline has not seen the live one yet), so they lag the live transaction by one purchase.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from examples.fraud.feature_pipeline import feature_groups
from examples.fraud.features import REQUEST_FIELDS
from examples.fraud.training_pipeline import MODEL

if TYPE_CHECKING:
    import fti

DEPLOYMENT = "fraud"
PREDICTIONS = "fraud_predictions"


def request_for(transaction: dict[str, Any]) -> dict[str, Any]:
    """The deployment's inputs for a live transaction: ``cc_num`` and the raw transaction, the
    time as ISO 8601 text (how a JSON request carries it).

    Args:
        transaction: ``cc_num``, ``datetime`` (tz-aware), ``amount``, ``category``, ``lat``, ``lon``.
    """
    request: dict[str, Any] = {"cc_num": int(transaction["cc_num"])}
    for name in REQUEST_FIELDS:
        value = transaction[name]
        request[name] = value.isoformat() if isinstance(value, datetime) else value
    return request


def sample_transactions(project: fti.Project, n_cards: int = 2) -> list[dict[str, Any]]:
    """Live transactions for a demo: per card, an ordinary purchase near home two hours after its
    last transaction, and a large electronics purchase in a distant city ten minutes after it."""
    groups = feature_groups(project)
    cards = (
        groups.profiles.read(columns=["cc_num", "home_lat", "home_lon"]).sort_values("cc_num").head(n_cards)
    )
    latest = groups.transactions.online_lookup([{"cc_num": int(c)} for c in cards["cc_num"]])
    out: list[dict[str, Any]] = []
    for card, last in zip(cards.itertuples(), latest, strict=True):
        when: datetime = last["datetime"] if last is not None else datetime.now().astimezone()
        out.append(
            {
                "cc_num": int(card.cc_num),
                "datetime": when + timedelta(hours=2),
                "amount": 23.5,
                "category": "grocery",
                "lat": float(card.home_lat) + 0.01,
                "lon": float(card.home_lon) - 0.01,
            }
        )
        far_lat = 47.61 if card.home_lat < 40 else 25.76  # Seattle or Miami, whichever is far
        out.append(
            {
                "cc_num": int(card.cc_num),
                "datetime": when + timedelta(minutes=10),
                "amount": 1899.0,
                "category": "electronics",
                "lat": far_lat,
                "lon": -122.33 if far_lat > 40 else -80.19,
            }
        )
    return out


def score(project: fti.Project, start: datetime | None = None, end: datetime | None = None) -> int:
    """Batch-score the transactions of ``[start, end)`` into ``fraud_predictions``; returns rows."""
    from fti.batch import score as batch_score

    result = batch_score(
        project, model=f"{MODEL}@production", start_time=start, end_time=end, output=PREDICTIONS
    )
    return int(result.rows)
