"""Test support shipped with fti: real-server fixtures and backend contract suites."""
