"""Rewrite asserts in the shipped contract suites so failures show the compared values."""

import pytest

pytest.register_assert_rewrite("fti.testing.contracts")
