"""The paper's experiments by name, as ``RunConfig`` values (big_vision style).

Each experiment is a plain-Python module with ``get_config(scale, ...)``; this registry
names them ``<scale>/<experiment>``, ``scale`` being ``paper`` (the paper's recipe) or
``demo`` (the same code on the ``small`` preset and embedded data, minutes on a CPU)::

    from mtsyn_tf import configs
    configs.config_names()        # ('paper/contour', ..., 'demo/vgg16_normals')
    cfg = configs.get_config("demo/multitask_da_conv5", seed=1, **{"trainer.da_tap": "conv4"})
    train(cfg)

Overrides are dotted ``RunConfig`` fields (``trainer.da_tap``, ``batch_size``,
``trainer.loss_weights.depth``) or their flag names (``da_tap``, ``w_depth``).
``scripts/train.py --config=NAME --set=FIELD=VALUE`` is the same from the command line.
"""

from __future__ import annotations

import difflib

from mtsyn_tf.configs import (
    bi_fool,
    common,
    full_model,
    multitask_da,
    multitask_noda,
    single_task,
    vgg16_normals,
)
from mtsyn_tf.configs.settings import apply_overrides, settings
from mtsyn_tf.trainer.config import RunConfig

# experiment -> (module, arguments of its get_config). Table 4's rows, then the VGG16 model.
EXPERIMENTS = {
    "contour": (single_task, {"task": "contour"}),  # row 1 "Edge"
    "depth": (single_task, {"task": "depth"}),  # row 2
    "normals": (single_task, {"task": "normals"}),  # row 3 "Surf."
    "multitask_noda": (multitask_noda, {}),  # row 4
    "multitask_da_conv1": (multitask_da, {"tap": "conv1"}),  # row 5
    "multitask_da_conv4": (multitask_da, {"tap": "conv4"}),  # row 6
    "multitask_da_conv5": (multitask_da, {"tap": "conv5"}),  # row 7
    "multitask_da_fc6": (multitask_da, {"tap": "fc6"}),  # row 8, the paper's "conv6"
    "multitask_da_conv5_bifool": (bi_fool, {}),  # row 9
    "full_model": (full_model, {}),  # row 10: conv5, 1.5M images
    "vgg16_normals": (vgg16_normals, {}),  # §4.5 NYUD normals
}

__all__ = ["apply_overrides", "config_names", "get_config", "settings"]


def config_names() -> tuple[str, ...]:
    return tuple(f"{scale}/{name}" for scale in common.SCALES for name in EXPERIMENTS)


def get_config(name: str, **overrides) -> RunConfig:
    """The named experiment's ``RunConfig`` with ``overrides`` (dotted fields) applied.

    String values are parsed as on the command line (``"conv4"``, ``"8"``, ``"depth,normals"``).
    """
    scale, _, experiment = name.partition("/")
    if scale not in common.SCALES or experiment not in EXPERIMENTS:
        close = difflib.get_close_matches(name, config_names(), n=4, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise ValueError(
            f"Unknown config name {name!r}{hint}. Expected '<scale>/<experiment>' with scale in "
            f"{common.SCALES} and experiment in {tuple(EXPERIMENTS)}. Received: config={name}"
        )
    module, arguments = EXPERIMENTS[experiment]
    return apply_overrides(module.get_config(scale, **arguments), overrides, parse_strings=True)
