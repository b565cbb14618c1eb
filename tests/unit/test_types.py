"""ModelRef: the one way a registered model is named ("fraud", "fraud:3", "fraud@production")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fti
from fti._names import MAX_VERSION
from fti.errors import ValidationError
from fti.types import ModelRef

names = st.from_regex(r"[a-z0-9_]{1,63}", fullmatch=True)
aliases = st.from_regex(r"[a-z0-9_-]{1,63}", fullmatch=True)
versions = st.integers(min_value=1, max_value=MAX_VERSION)
refs = st.one_of(
    st.builds(ModelRef, names),
    st.builds(lambda n, v: ModelRef(n, version=v), names, versions),
    st.builds(lambda n, a: ModelRef(n, alias=a), names, aliases),
)


@given(refs)
def test_parse_round_trips_the_text_form(ref: ModelRef) -> None:
    text = str(ref)
    assert ModelRef.parse(text) == ref
    assert str(ModelRef.parse(text)) == text
    assert ("@" in text) == (ref.alias is not None) and (":" in text) == (ref.version is not None)


@given(st.text(alphabet="abz09_-@:.A /", max_size=12))
def test_any_text_parses_to_a_ref_that_round_trips_or_is_refused_clearly(text: str) -> None:
    try:
        ref = ModelRef.parse(text)
    except ValidationError as exc:  # never another exception type
        assert exc.message
        return
    assert ModelRef.parse(str(ref)) == ref
    assert ref.name == text.split("@")[0].split(":")[0]


def test_the_three_forms() -> None:
    assert ModelRef.parse("fraud") == ModelRef("fraud")
    assert ModelRef.parse("fraud:3") == ModelRef("fraud", version=3)
    assert ModelRef.parse("fraud@production") == ModelRef("fraud", alias="production")
    assert ModelRef.parse("fraud:03") == ModelRef("fraud", version=3)
    ref = ModelRef("fraud", alias="prod-eu")
    assert ModelRef.parse(ref) is ref
    assert fti.ModelRef is ModelRef


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "model must be 'name' (latest version), 'name:version' or 'name@alias'"),
        (None, "model must be"),
        (3, "model must be"),
        ("a@", "has an empty alias"),
        ("a:0", "must be an integer from 1 to 2147483647"),
        ("a:x", "model version in 'a:x' must be an integer"),
        ("a:", "must be an integer"),
        ("a:-1", "must be an integer"),
        ("a:\u0663", "must be an integer"),  # a non-ASCII digit
        ("a:2147483648", "must be an integer from 1 to 2147483647"),
        ("a:" + "9" * 5000, "must be an integer from 1 to 2147483647"),
        ("a@b:3", "names both an alias and a version"),
        ("a:3@b", "names both an alias and a version"),
        ("Fraud", "invalid model name 'Fraud'"),
        ("fraud model", "invalid model name"),
        ("@prod", "invalid model name ''"),
        (":3", "invalid model name ''"),
        ("a@Prod", "invalid alias 'Prod'"),
        ("a@b@c", "invalid alias 'b@c'"),
        ("a:1:2", "must be an integer"),
    ],
)
def test_anything_else_is_a_validation_error_that_says_why(text: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        ModelRef.parse(text)
    assert message in info.value.message


def test_constructed_refs_are_checked_and_a_version_is_pinned_once() -> None:
    with pytest.raises(ValidationError, match="names both alias 'prod' and version 2"):
        ModelRef("a", version=2, alias="prod")
    with pytest.raises(ValidationError, match="invalid model version 0"):
        ModelRef("a", version=0)
    with pytest.raises(ValidationError, match="invalid model version True"):
        ModelRef("a", version=True)
    assert ModelRef.parse("a").pin(4) == ModelRef("a", version=4)
    assert ModelRef.parse("a:4").pin(None) == ModelRef("a", version=4)
    with pytest.raises(ValidationError, match=r"either an alias \('a@prod'\) or version=4, not both"):
        ModelRef.parse("a@prod").pin(4)
    with pytest.raises(ValidationError, match=r"either in the reference \('a:3'\) or as version=4"):
        ModelRef.parse("a:3").pin(4)
