"""mtsyn_tf.runtime: oneDNN preferred before TensorFlow loads, pools sized to the cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mtsyn_tf import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code: str, **env_changes) -> dict:
    """Runs ``code`` in a fresh interpreter (TensorFlow reads its settings once per process)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop(runtime.ONEDNN_VARIABLE, None)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_FRESH_PROCESS = """
import json, os
import mtsyn_tf
from mtsyn_tf import runtime
plan = runtime.configure_threads(cores=2)
import tensorflow as tf
tf.constant(1.0) + 1.0  # initialises the context with the pools
print(json.dumps({"env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                  "onednn": runtime.onednn_enabled(), "applied": plan["applied"],
                  "intra": tf.config.threading.get_intra_op_parallelism_threads(),
                  "inter": tf.config.threading.get_inter_op_parallelism_threads()}))
"""


def test_a_fresh_process_gets_onednn_and_pools_sized_to_the_cores():
    # TF 2.21 leaves oneDNN off on AVX2-only CPUs unless the variable says 1.
    result = _run(_FRESH_PROCESS)
    assert result == {"env": "1", "onednn": True, "applied": True, "intra": 2, "inter": 1}


def test_the_users_choice_of_eigen_wins():
    result = _run(_FRESH_PROCESS, TF_ENABLE_ONEDNN_OPTS="0")
    assert (result["env"], result["onednn"]) == ("0", False)


def test_prefer_onednn_is_a_no_op_once_tensorflow_is_imported(monkeypatch):
    import tensorflow  # noqa: F401  (the suite imports it anyway)

    monkeypatch.delenv(runtime.ONEDNN_VARIABLE, raising=False)
    assert runtime.prefer_onednn() is False
    assert runtime.ONEDNN_VARIABLE not in os.environ


def test_configure_threads_after_the_first_op_changes_nothing():
    import tensorflow as tf

    tf.constant(1.0) + 1.0
    before = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    plan = runtime.configure_threads(cores=before[0] + 1)
    assert plan["applied"] is False
    assert before == (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


@pytest.mark.parametrize(
    "cores, plan",
    [
        (1, {"intra_op": 1, "inter_op": 1, "data_threads": 1}),
        (2, {"intra_op": 2, "inter_op": 1, "data_threads": 1}),
        (8, {"intra_op": 8, "inter_op": 2, "data_threads": 4}),
    ],
)
def test_thread_plan(cores, plan):
    assert runtime.thread_plan(cores) == plan


def test_thread_plan_rejects_no_cores():
    with pytest.raises(ValueError, match="cores must be >= 1"):
        runtime.thread_plan(0)


def test_dataset_options_bound_tf_data_to_its_share():
    options = runtime.dataset_options(deterministic=True, cores=4)
    assert options.deterministic is True
    assert options.threading.private_threadpool_size == 2
    assert options.threading.max_intra_op_parallelism == 1
    assert options.autotune.enabled is False  # its thread stalled closing the stream


def test_the_training_pipeline_takes_the_runtime_share(tiny_synthetic_dir):
    from mtsyn_tf.data import pipeline

    ds = pipeline.make_training_dataset(
        tiny_synthetic_dir, "embedded", 2, 32, seed=0, deterministic=True
    )
    options = ds.options()
    assert options.threading.private_threadpool_size == runtime.thread_plan()["data_threads"]
    assert options.autotune.enabled is False
    assert options.deterministic is True


def test_collectives_keep_two_inter_op_threads(monkeypatch):
    # A MirroredStrategy all-reduce blocks an inter-op thread until every replica arrives.
    calls = {}
    import tensorflow as tf

    monkeypatch.setattr(
        tf.config.threading, "set_inter_op_parallelism_threads", lambda n: calls.update(inter=n)
    )
    monkeypatch.setattr(
        tf.config.threading, "set_intra_op_parallelism_threads", lambda n: calls.update(intra=n)
    )
    assert runtime.configure_threads(cores=2, collectives=True)["inter_op"] == 2
    assert calls == {"intra": 2, "inter": 2}
    assert runtime.configure_threads(cores=2)["inter_op"] == 1
