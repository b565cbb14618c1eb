"""Traffic splits: deterministic, process-independent routing and the checks on a split."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fti.errors import ValidationError
from fti.serving.records import DeploymentSpec
from fti.serving.routing import CHAMPION, Split, bucket, check_variants, expand, split_name


@given(st.text(max_size=40), st.floats(0.01, 60), st.floats(0, 39.9))
def test_growing_a_share_only_moves_entities_from_the_champion(key: str, low: float, more: float) -> None:
    small = Split("d", (("canary", low),))
    large = Split("d", (("canary", low + more),))
    if small.pick(key) == "canary":
        assert large.pick(key) == "canary"
    if large.pick(key) == CHAMPION:
        assert small.pick(key) == CHAMPION


def test_the_bucket_of_a_key_is_the_same_in_another_process() -> None:
    keys = ["42", "cc-0001", "é", ""]
    code = f"from fti.serving.routing import bucket; print([bucket(k) for k in {keys!r}])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str([bucket(k) for k in keys])
    assert all(0 <= bucket(k) < 1 for k in keys)


def test_the_route_key_is_the_header_else_the_sticky_inputs_first_value() -> None:
    split = Split("d", (("b", 50.0),), sticky="cc_num")
    payload = {"inputs": [{"name": "x", "data": [1.0]}, {"name": "cc_num", "data": [[7], [8]]}]}
    assert split.key({}, payload) == "7"
    assert split.key({"x-fti-route-key": "user-9"}, payload) == "user-9"
    assert split.key({}, {"inputs": [{"name": "x", "data": [1]}]}) is None
    assert Split("d", (("b", 50.0),)).key({}, payload) is None


def test_expand_gives_each_variant_its_own_entry_and_keeps_the_champion_unchanged() -> None:
    spec = DeploymentSpec("fraud", "fraud@production", enrich=True, variants=(("challenger", "fraud:4", 10.0),),
                          sticky="cc_num")  # fmt: skip
    entries, splits = expand([spec])
    assert entries["fraud"] == DeploymentSpec("fraud", "fraud@production", enrich=True)
    child = entries["fraud/challenger"]
    assert (child.model, child.model_version, child.enrich) == ("fraud", 4, True)
    assert split_name("fraud/challenger") == ("fraud", "challenger") and split_name("fraud") == (
        "fraud",
        CHAMPION,
    )
    assert splits == {"fraud": Split("fraud", (("challenger", 10.0),), "cc_num")}


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"a": ("m:2", 60), "b": ("m:3", 50)}, "sum to 110 %"),
        ({"a": ("m:2", 0)}, r"percentage in \(0, 100\]"),
        ({"a": ("m:2", -5)}, r"percentage in \(0, 100\]"),
        ({"a": ("m:2", float("nan"))}, r"percentage in \(0, 100\]"),
        ({"a": ("m:2", True)}, r"percentage in \(0, 100\]"),
        ({"a": ("m:2", "10")}, r"percentage in \(0, 100\]"),
        ({"champion": ("m:2", 10)}, "reserved"),
        ({"Bad Name": ("m:2", 10)}, "invalid variant name"),
        ({"a": "m:2"}, r"must be \(model reference, percent\)"),
        ({"a": ("m@", 10)}, "alias"),
        ([("a", "m:2", 10)], "must be a dict"),
    ],
)
def test_bad_splits_are_refused(variants: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_variants(variants)
