"""The Spark engine: fti's three heavy jobs on a Spark cluster, by configuration.

Install ``fti[spark]`` (pyspark; Spark 4 needs a Java 17+ runtime) and point ``FTI_SPARK_MASTER``
at a cluster (``local[*]``, ``spark://host:7077``, ``yarn``, ``k8s://...``). Then:

* ``fg.insert(spark_df)`` validates, writes and commits a Spark DataFrame (:mod:`.ingest`), and
  materializes it online (:mod:`.online`);
* ``fv.create_training_data(engine="spark")``, ``fv.get_training_data(v, engine="spark")`` and
  ``fv.get_batch_data(engine="spark")`` run the point-in-time join in Spark (:mod:`.pit`,
  :mod:`.training`) and return Spark DataFrames;
* ``fti.batch.score(..., engine="spark")`` scores on the executors (:mod:`.batch`).

The offline store stays the one source of truth: Spark reads a Delta version by the file list
delta-rs gives for it and Spark-written Parquet files are committed by delta-rs (:mod:`.io`), so
no Delta-Spark jar is needed. Results equal the embedded (DuckDB) engine's: the same joins, the
same transformations (:class:`~fti.features.transformations.Transformer` on Arrow batches), the
same catalog records. :mod:`.session` builds the session from the settings; :mod:`.types` maps
fti dtypes to Spark types. Importing this package imports no pyspark.
"""
