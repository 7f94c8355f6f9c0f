# The two set-up commands of the README. Both create .venv and install what they need.
.PHONY: demo test test-all lint format bench bench-torch ablate

VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

demo:
	bash scripts/setup_env.sh
	$(PY) scripts/demo.py --workspace=workspace

# The paper's ablation table on the demo data: 5 experiments × 3 seeds, resumable; report in
# workspace/ablation/demo/report/ (README "Ablation grid"). ABLATE_FLAGS="--grid=paper ..."
# is the GPU recipe.
ABLATE_FLAGS ?=
ablate:
	bash scripts/setup_env.sh
	$(PY) scripts/ablate.py --workspace=workspace $(ABLATE_FLAGS)

# Fast suite (slow tests skipped); what CI runs.
test:
	bash scripts/setup_env.sh
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --durations=15

# Everything: the fast suite, then @pytest.mark.slow (paper presets, multi-process runs)
# one at a time — the paper preset's ONNX conversion alone needs ~16 GB of host memory.
test-all: test
	$(PY) -m pytest -q -m slow

lint:
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check .

format:
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

# Each figure beside what it is compared with, from one run, and one table at the end
# (benchmarks/bench_all.py): fresh-scene render rate, the train step beside the PyTorch
# reference step (if .venv-torch exists; `make bench-torch` creates it), training inside
# fit beside the isolated step and the input pipeline, FLOPs/memory, export latency.
bench:
	$(PY) benchmarks/bench_all.py

# Opt-in: PyTorch (CPU) in its own virtualenv, never a dependency of mtsyn_tf; then the
# train-step comparison alone.
TORCH_VENV ?= .venv-torch
$(TORCH_VENV)/.installed:
	python3 -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install torch==2.13.0 numpy
	touch $@

bench-torch: $(TORCH_VENV)/.installed
	$(PY) benchmarks/compare_train_step.py --torch_python=$(TORCH_VENV)/bin/python
