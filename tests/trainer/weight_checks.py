"""Weight comparison of two short runs of the ``small`` preset, by checkpoint variable.

Shared by the mirrored (``test_mirrored_run.py``) and two-worker
(``test_multi_worker.py``) tests: each variable of a run's last checkpoint against a
reference run's, in units of the reference's epoch-2 update (ckpt-2 - ckpt-1), with
two classes of variables: well-conditioned (no ReLU / max-pool kink between them and
the loss, or BatchNorm moving statistics) and the rest (see the tests' docstrings).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mtsyn_tf.models import build_discriminator, build_multitask_model
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer

PRESET = "small"
# The two levels' bounds, in fractions of a variable's epoch-2 update (derived in
# test_mirrored_run.py's and test_multi_worker.py's docstrings).
TIGHT, LOOSE = 2e-2, 6.0
# Layers whose output reaches the loss through no ReLU or max-pool: each head's last
# convolution and D's last (the logits).
KINK_FREE_LAYERS = ("_head/output/", "discriminator/d3/")


def variable_paths(preset: str = PRESET) -> dict:
    """Checkpoint key -> variable path. The optimizers save the trainable variables by
    index, in the order of ``model.trainable_variables`` / ``discriminator``'s."""
    model, disc = build_multitask_model(preset), build_discriminator(preset)
    MultiTaskAdversarialTrainer(model, disc, TrainerConfig()).build_all()
    key = "{}/_trainable_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"
    paths = {
        key.format("task_optimizer", i): v.path for i, v in enumerate(model.trainable_variables)
    }
    for i, v in enumerate(disc.trainable_variables):
        paths[key.format("disc_optimizer", i)] = v.path
    return paths


def checkpoint_weights(directory) -> dict:
    """Trainable variables (saved in the optimizers' lists) and BN moving statistics."""
    reader = tf.train.load_checkpoint(str(directory))
    return {
        k: reader.get_tensor(k)
        for k in reader.get_variable_to_shape_map()
        if k.startswith(("model/", "discriminator/")) or "_trainable_variables/" in k
    }


def weight_errors(run_dir, reference_dir) -> dict:
    """Key -> (epoch-2 update, error, bound slack of 4 ulp) for every variable of
    ``run_dir``'s last checkpoint against the reference's."""
    ref = os.path.join(str(reference_dir), "checkpoints")
    run = checkpoint_weights(os.path.join(str(run_dir), "checkpoints"))
    final = checkpoint_weights(os.path.join(ref, "ckpt-2"))
    before = checkpoint_weights(os.path.join(ref, "ckpt-1"))
    assert len(run) > 50 and run.keys() == final.keys()
    errors = {}
    for key, y in final.items():
        update = float(np.abs(y - before[key]).max())
        ulps = 4 * float(np.finfo(np.float32).eps * np.abs(y).max())
        errors[key] = (update, float(np.abs(run[key] - y).max()), ulps)
    return errors


def well_conditioned(key: str, paths: dict) -> bool:
    """BN moving statistics (saved under model/ and discriminator/) and the kink-free
    layers' variables."""
    if key.startswith(("model/", "discriminator/")):
        return True
    return any(layer in paths[key] for layer in KINK_FREE_LAYERS)


def assert_weights_within(errors: dict, keys, fraction: float, label: str, names=None):
    """Each of ``keys`` within ``fraction`` of its epoch-2 update + 4 ulp; prints the
    largest ratio (``names``: key -> what to call it)."""
    names = names or {}
    bad, worst = [], (0.0, "")
    for key in keys:
        update, error, ulps = errors[key]
        worst = max(worst, (error / update if update else 0.0, names.get(key, key)))
        if not error <= fraction * update + ulps:
            bad.append(
                f"{names.get(key, key)}: {error:.3g} > {fraction} x update {update:.3g} + {ulps:.2g}"
            )
    print(f"{label}: largest error / epoch-2 update {worst[0]:.3g} ({worst[1]})")
    assert not bad, f"{label} variables outside {fraction} x their update: {bad}"


def assert_weights_close(run_dir, reference_dir, tight: float, loose: float):
    """Well-conditioned variables within ``tight`` of their epoch-2 update (+ 4 ulp),
    every other variable within ``loose``."""
    errors = weight_errors(run_dir, reference_dir)
    paths = variable_paths()
    tight_keys = [k for k in errors if well_conditioned(k, paths)]
    # 3 heads' output kernel + bias, d3's kernel + bias, and 2 statistics per BN layer.
    kink_free = [k for k in tight_keys if k in paths]
    assert len(kink_free) == 8, [paths[k] for k in kink_free]
    assert len(tight_keys) > 40
    assert_weights_within(errors, tight_keys, tight, "well-conditioned", paths)
    rest = [k for k in errors if k not in tight_keys]
    assert_weights_within(errors, rest, loose, "kinked", paths)
