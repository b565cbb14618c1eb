"""Feature queries: joins on a group's primary key and unambiguous column names, checked when the
query is built."""

from __future__ import annotations

import pytest

from fti.errors import SchemaError
from tests.unit.features._data import assert_no_view


def test_join_on_a_column_that_is_not_a_key(project, groups) -> None:
    with pytest.raises(SchemaError, match=r"cannot join 'profiles' on \['age'\].*primary key.*\['cc_num'\]"):
        groups["tx"].select(["amount"]).join(
            groups["profiles"].select_all(include_primary_key=False, include_event_time=False), on=["age"]
        )
    with pytest.raises(SchemaError, match=r"not columns of the spine feature group 'profiles'"):
        groups["profiles"].select(["age"]).join(
            groups["windows"].select_all(include_primary_key=False, include_event_time=False), on=["cc_num"]
        ).join(groups["tx"].select(["amount"]), on=["tid"])
    assert_no_view(project)


def test_ambiguous_column_names_without_prefix(project, groups) -> None:
    with pytest.raises(SchemaError, match=r"ambiguous column name 'amount'.*prefix="):
        groups["tx"].select(["amount"]).join(
            groups["tx"].select(["amount"]), left_on=["tid"], right_on=["tid"]
        )
    left = groups["tx"].select(["amount"]).join(groups["profiles"].select(["age"]))
    with pytest.raises(SchemaError, match=r"ambiguous column name 'age'.*'profiles'"):
        left.join(groups["profiles"].select(["age"]))
    assert_no_view(project)
