"""One trainer step on a global batch of 4: single device vs MirroredStrategy on 2 CPUs.

Run as a script (``python mirrored_step.py OUT.npz [cpu|gpu]``) by ``test_mirrored.py``:
the two logical devices must be configured before TensorFlow initialises its devices, which
cannot happen inside a pytest process that already ran other TF tests.

Both runs start from the same weights and see the same global batch. Grayscale is off
and the pool is still filling (size 8 > 4), so no per-replica randomness enters the
step; the mirrored run uses synchronized BatchNorm, as ``trainer/loop.py`` does, so the
batch statistics are those of the global batch in both runs.
"""

import os
import sys

import tensorflow as tf

# "cpu" (default): two logical CPUs. "gpu": two GPUs; a single GPU is split into two
# logical GPUs (then all-reduced through one device: NCCL needs distinct physical GPUs).
DEVICE = sys.argv[2] if len(sys.argv) > 2 else "cpu"
if DEVICE == "cpu":
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
    )
else:
    GPUS = tf.config.list_physical_devices("GPU")
    if not GPUS:
        sys.exit("mirrored_step.py gpu: no GPU visible")
    if len(GPUS) == 1:
        tf.config.set_logical_device_configuration(
            GPUS[0], [tf.config.LogicalDeviceConfiguration(memory_limit=8192)] * 2
        )
    # float32 means float32: no TensorFloat-32 (10-bit mantissa) convolutions on Ampere+,
    # which would move the losses by ~1e-3 relative and hide what the test compares.
    tf.config.experimental.enable_tensor_float_32_execution(False)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mtsyn_tf.models import build_discriminator, build_multitask_model  # noqa: E402
from mtsyn_tf.trainer.config import TrainerConfig  # noqa: E402
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer  # noqa: E402

GLOBAL_BATCH, SIZE = 4, 227
LOSS_KEYS = ("loss_bh", "loss_d", "loss_adv", "loss_contour", "loss_depth", "loss_normals")


def make_dataset():
    rng = np.random.default_rng(0)
    shape = (GLOBAL_BATCH, SIZE, SIZE)
    valid = (rng.random((*shape, 1)) < 0.9).astype(np.float32)
    normals = rng.normal(size=(*shape, 3))
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    batch = {
        "synthetic": {
            "image": rng.random((*shape, 3), dtype=np.float32),
            "depth": (rng.uniform(0.5, 8.0, (*shape, 1)) * valid).astype(np.float32),
            "normals": (normals * valid).astype(np.float32),
            "contour": (rng.random((*shape, 1)) < 0.1).astype(np.float32),
            "valid": valid,
        },
        "real": {"image": rng.random((*shape, 3), dtype=np.float32)},
    }
    return tf.data.Dataset.from_tensors(batch)


def build(strategy, initial=None):
    sync_bn = strategy.num_replicas_in_sync > 1  # as trainer/loop.py does
    with strategy.scope():
        model = build_multitask_model("small", sync_batchnorm=sync_bn)
        disc = build_discriminator("small", sync_batchnorm=sync_bn)
        config = TrainerConfig(grayscale=False, pool_size=8)
        trainer = MultiTaskAdversarialTrainer(model, disc, config)
        # Momentum gives the optimizers slot variables that must be created in scope.
        trainer.compile(
            task_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            disc_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        )
        trainer.build_all()
        trainer.build_optimizers()
        if initial is not None:
            for variable, value in zip(watched(trainer), initial):
                variable.assign(value)
    return trainer


def watched(trainer):
    """Everything a step may change: B+H and D weights, BatchNorm statistics included."""
    return trainer.model.weights + trainer.discriminator.weights


def run(strategy, initial=None):
    trainer = build(strategy, initial)
    start = [v.numpy() for v in watched(trainer)]
    history = trainer.fit(make_dataset(), epochs=1, verbose=0).history
    return trainer, start, history


def main(out_path):
    keras.utils.set_random_seed(0)
    single, initial, single_history = run(tf.distribute.get_strategy())
    if DEVICE == "cpu":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        one_physical = len(tf.config.list_physical_devices("GPU")) == 1
        strategy = tf.distribute.MirroredStrategy(
            ["/gpu:0", "/gpu:1"],
            cross_device_ops=tf.distribute.ReductionToOneDevice() if one_physical else None,
        )
    mirrored, mirrored_start, mirrored_history = run(strategy, initial)
    arrays = {"replicas": np.array(strategy.num_replicas_in_sync)}
    arrays["names"] = np.array([v.path for v in watched(single)])
    arrays["trainable"] = np.array([v.trainable for v in watched(single)])
    for prefix, values in (("initial", initial), ("mirrored_initial", mirrored_start)):
        for i, value in enumerate(values):
            arrays[f"{prefix}_{i}"] = value
    for prefix, trainer in (("single", single), ("mirrored", mirrored)):
        for i, variable in enumerate(watched(trainer)):
            arrays[f"{prefix}_{i}"] = variable.numpy()
    for prefix, history in (("single", single_history), ("mirrored", mirrored_history)):
        for key in LOSS_KEYS:
            arrays[f"{prefix}_{key}"] = np.array(history[key][-1])
    # The pool is per replica (ON_READ): each replica stored its own half of the batch.
    arrays["mirrored_pool_count"] = np.array(
        [int(v.numpy()) for v in strategy.experimental_local_results(mirrored.pool.count.value)]
    )
    tmp_path = out_path + ".tmp.npz"
    np.savez(tmp_path, **arrays)
    os.replace(tmp_path, out_path)


if __name__ == "__main__":
    main(sys.argv[1])
