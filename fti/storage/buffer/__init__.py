"""The push-buffer role: a durable, append-only log of pushed rows per feature group, drained into
the offline store in micro-batches (see :mod:`fti.streaming.committer`)."""
