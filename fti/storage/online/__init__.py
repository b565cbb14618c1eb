"""The online store role: the latest feature row per primary key, for low-latency lookups."""
