# The two commands: `make demo` runs the main job on embedded defaults; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-spark lint typecheck pytest system-deps install clean bench proto

demo: $(STAMP)
	$(BIN)/python -m examples.demo

test: system-deps $(STAMP) lint typecheck pytest

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# PyTorch's CPU build first (TorchScript flavor tests); a bare range would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# PostgreSQL and Redis servers for the integration tests, headless Chromium (with its driver)
# for the web UI's browser tests and a Java runtime for Spark (the standalone cluster the Spark
# tests start), installed with apt-get when run as root.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	{ [ -n "$$JAVA_HOME" ] && [ -x "$$JAVA_HOME/bin/java" ]; } || command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
			systemctl disable --now redis-server >/dev/null 2>&1 || service redis-server stop >/dev/null 2>&1 || true; \
		else \
			echo "missing system packages:$$missing (install them, e.g. sudo apt-get install$$missing)"; exit 1; \
		fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check fti tests benchmarks examples
	$(BIN)/ruff format --check fti tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The Spark suite alone (also part of `make test`): a standalone cluster on loopback, local[2] sessions.
test-spark: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m spark

# Benchmarks print figures against a reference measured in the same run (see benchmarks/*.py docstrings).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.import_time
	$(BIN)/python -m benchmarks.insert
	$(BIN)/python -m benchmarks.online_lookup

clean:
	rm -rf $(VENV) .fti .mypy_cache .ruff_cache

# the gRPC protocol's messages, generated and committed (installing fti needs no code generation);
# a private descriptor pool, so tritonclient's or KServe's own `inference` messages can share the process
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I fti/serving/proto --python_out=fti/serving/proto fti/serving/proto/inference.proto
	sed -i 's/_descriptor_pool.Default().AddSerializedFile/_descriptor_pool.DescriptorPool().AddSerializedFile/' fti/serving/proto/inference_pb2.py
