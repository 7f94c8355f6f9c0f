"""Process settings that make training fast on CPUs: oneDNN, thread pools, tf.data budget.

Three decisions, each measured (README "Performance"):

* **oneDNN on everywhere.** TensorFlow 2.21 turns its oneDNN kernels on by default only on
  CPUs with AVX-512 VNNI/BF16/AMX; on AVX2-only CPUs it keeps the Eigen kernels, which run
  our AlexNet step ~1.5× slower. ``prefer_onednn()`` sets ``TF_ENABLE_ONEDNN_OPTS=1``
  unless the user set it (``TF_ENABLE_ONEDNN_OPTS=0`` still selects Eigen). TensorFlow
  reads the variable once, when it is imported, so ``mtsyn_tf/__init__.py`` calls this
  before anything imports TensorFlow; afterwards it changes nothing and says so.
* **Thread pools sized to the cores.** ``configure_threads()`` gives TensorFlow one
  intra-op thread per core and, on small machines, one inter-op thread: the step's ops
  are large convolutions/matmuls that use every core themselves, and two of them running
  side by side only fight over the same cores.
* **tf.data gets a share, not the whole machine.** ``dataset_options()`` bounds the input
  pipeline's private thread pool, so prefetching the next batch does not steal cores
  from the step it overlaps (issue 13: on 2 cores the `small` step ran at ~14 img/s
  inside ``fit`` vs 25.5 alone, with half the CPU time in the kernel). Autotuning is off
  for the training stream: within that pool it has nothing to choose, and its
  optimisation thread made closing the stream take up to a minute (``dataset_options``).
"""

from __future__ import annotations

import os
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> bool:
    """Turns TensorFlow's oneDNN kernels on unless the user chose; True if it took effect.

    Only possible before TensorFlow is imported. Returns False when TensorFlow is already
    imported (the setting of that import stays) or the user set the variable.
    """
    if "tensorflow" in sys.modules:
        return False
    if ONEDNN_VARIABLE in os.environ:
        return False
    os.environ[ONEDNN_VARIABLE] = "1"
    return True


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs oneDNN kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_plan(cores: int | None = None) -> dict:
    """Intra-/inter-op threads and the tf.data budget for ``cores`` cores.

    intra-op = cores (each big op uses them all); inter-op = 1 up to 4 cores (independent
    ops run one after the other instead of splitting the same cores), else 2; tf.data's
    private pool = half the cores (at least 1).
    """
    cores = cpu_cores() if cores is None else cores
    if cores < 1:
        raise ValueError(f"cores must be >= 1. Received: cores={cores}")
    return {
        "intra_op": cores,
        "inter_op": 1 if cores <= 4 else 2,
        "data_threads": max(1, cores // 2),
    }


def configure_threads(cores: int | None = None, collectives: bool = False) -> dict:
    """Sets TensorFlow's thread pools per ``thread_plan`` (before any op runs); returns it.

    ``collectives``: the run will all-reduce between replicas on this host
    (MirroredStrategy); a collective op waits in an inter-op thread for the other
    replicas' ops, so at least 2 inter-op threads are kept.

    Once TensorFlow's context is initialised the pools are fixed; then this leaves them
    as they are and returns the plan it could not apply under ``"applied": False``.
    """
    import tensorflow as tf

    plan = thread_plan(cores)
    if collectives:
        plan["inter_op"] = max(plan["inter_op"], 2)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(plan["intra_op"])
        tf.config.threading.set_inter_op_parallelism_threads(plan["inter_op"])
        applied = True
    except RuntimeError:
        # "cannot be modified after initialization": keep what the process already has.
        applied = (
            tf.config.threading.get_intra_op_parallelism_threads() == plan["intra_op"]
            and tf.config.threading.get_inter_op_parallelism_threads() == plan["inter_op"]
        )
    return {**plan, "applied": applied}


def dataset_options(deterministic: bool, cores: int | None = None):
    """``tf.data.Options`` for a training input pipeline that overlaps the step.

    The pipeline runs in a private pool of ``data_threads`` threads, each op on one
    thread. Autotuning is off: every ``AUTOTUNE`` parallelism is then the pool's size
    (autotune could not go beyond it either) and prefetch buffers still grow on demand
    (tf.data's legacy prefetch tuner); the driver's speed is the same either way
    (``benchmarks/fit_vs_step.py``). Autotune's optimisation thread sleeps up to 60 s
    between rounds. Deleting an iterator wakes it from a cancellation callback, but
    TensorFlow marks the cancellation done only after every callback and child has run
    (``CancellationManager::StartCancel``); a thread that wakes in between sees "not
    cancelled" and sleeps again (``Model::OptimizeLoop``, TF 2.21), and the deletion
    waits for it. Closing the training stream at the end of a run took 12-59 s in
    demos, and 36-54 s in 3 of 8 trials of ``benchmarks/close_training_stream.py``
    (each the time left to the thread's next round); without the thread, milliseconds.
    """
    import tensorflow as tf

    plan = thread_plan(cores)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.threading.private_threadpool_size = plan["data_threads"]
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return options


def describe() -> dict:
    """What a run record or a benchmark header states about the runtime."""
    import tensorflow as tf

    return {
        "onednn": onednn_enabled(),
        f"{ONEDNN_VARIABLE}": os.environ.get(ONEDNN_VARIABLE),
        "cores": cpu_cores(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
