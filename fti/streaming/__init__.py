"""Streaming ingestion: pushed rows and stream feature pipelines.

- :mod:`~fti.streaming.push`: ``fg.push(rows)`` — online at once, offline through the durable
  push buffer (:mod:`fti.storage.buffer`), committed by the :mod:`~fti.streaming.committer` in
  micro-batches;
- :mod:`~fti.streaming.aggregator`: keyed window aggregation with watermarks (``fti.window``),
  :mod:`~fti.streaming.batch` the same windows in DuckDB;
- :mod:`~fti.streaming.processor`: a stream pipeline's loop (read, aggregate, write, checkpoint
  in :mod:`~fti.streaming.state`, acknowledge); :mod:`~fti.streaming.records` its status.

Declaring stream pipelines and running them as services is :mod:`fti.pipelines.streams` and
:mod:`fti.pipelines.services`.
"""
