"""The ``fti`` command line: one module per command group; it calls only the public API."""
