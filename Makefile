# The two set-up commands of the README. Both create .venv and install what they need.
.PHONY: demo test test-all lint format bench

VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

demo:
	bash scripts/setup_env.sh
	$(PY) scripts/demo.py --workspace=workspace

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

bench:
	$(PY) benchmarks/render_throughput.py
	$(PY) benchmarks/input_pipeline.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/export_latency.py
