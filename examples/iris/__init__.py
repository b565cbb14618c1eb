"""Iris: the smallest complete FTI system (see README.md)."""
