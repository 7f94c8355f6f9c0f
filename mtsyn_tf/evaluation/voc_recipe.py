"""The reference's VOC07 classification fine-tuning recipe (SPEC §5), as data and one update.

Source: the paper's evaluation code is philkr's ``voc-classification`` (Krähenbühl et al.
2016), in the variant Ren & Lee use (``src/train_cls.py``): Caffe SGD,

==========================  =================================================================
setting                     value (where it comes from in ``train_cls.py`` / ``solver.py``)
==========================  =================================================================
iterations, batch           80 000 at batch 16 (``-nit``, ``-bs``)
learning rate               1e-3, ``lr_policy "step"``, ``gamma 0.5``, ``stepsize 10000``
per-layer rates             fc6, fc7, fc8_cls: lr_mult 10 (bias 20); conv1–conv5: 1 (bias 2)
weight decay                1e-6 on weights and biases (``setDecay(t, 1, 1)``)
momentum                    0.9 (``Solver``'s SGD default)
gradient clipping           global L2 norm 10 (``clip_gradients=10``)
head                        drop6, drop7 (0.5) kept; fc8_cls N(0, 0.01), bias 0.1
                            (``--random-from drop7``)
input                       colour images, random crops + mirror; 1 and 10 crops at test
==========================  =================================================================

Caffe's SGD step, reproduced by :func:`apply_recipe_update`: clip the raw gradients by
their global norm, add ``weight_decay · decay_mult · w``, multiply by the layer's
``lr_mult``, then momentum SGD with the scheduled rate (Keras' ``m ← μm − lr·g; w ← w + m``
is Caffe's ``h ← μh + lr·g; w ← w − h``).
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

HEAD_LAYERS = ("fc6", "fc7", "fc8_cls")


@dataclasses.dataclass(frozen=True)
class VOC07Recipe:
    """Fine-tuning settings; the defaults are the reference's (see the module table)."""

    steps: int = 80_000
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_decay: float = 0.5
    lr_step: int = 10_000
    momentum: float = 0.9
    weight_decay: float = 1e-6
    clip_norm: float = 10.0
    head_layers: tuple = HEAD_LAYERS
    head_lr_mult: float = 10.0
    bias_lr_mult: float = 2.0
    dropout: float = 0.5
    fc8_init_std: float = 0.01
    fc8_bias_init: float = 0.1

    def validate(self) -> VOC07Recipe:
        for name in ("steps", "batch_size", "learning_rate", "lr_step", "clip_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0. Received: {name}={getattr(self, name)}")
        return self

    def schedule(self):
        """lr · lr_decay^floor(step / lr_step) (Caffe's ``step`` policy)."""
        return keras.optimizers.schedules.ExponentialDecay(
            self.learning_rate, self.lr_step, self.lr_decay, staircase=True
        )

    def optimizer(self) -> keras.optimizers.SGD:
        return keras.optimizers.SGD(self.schedule(), momentum=self.momentum)


def lr_multipliers(net: keras.Model, recipe: VOC07Recipe) -> list[float]:
    """Caffe lr_mult of each of ``net.trainable_variables``: ×head for fc6–fc8, ×bias for biases."""
    by_id = {}
    for layer in _all_layers(net):
        head = recipe.head_lr_mult if layer.name in recipe.head_layers else 1.0
        for weight in layer.trainable_weights:
            bias = weight is getattr(layer, "bias", None)
            by_id[id(weight)] = head * (recipe.bias_lr_mult if bias else 1.0)
    missing = [v.path for v in net.trainable_variables if id(v) not in by_id]
    if missing:
        raise ValueError(f"No learning-rate multiplier for these variables: {missing[:5]}")
    return [by_id[id(v)] for v in net.trainable_variables]


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def apply_recipe_update(optimizer, grads, variables, multipliers, recipe: VOC07Recipe) -> tf.Tensor:
    """One Caffe SGD step (clip → weight decay → lr_mult → momentum); returns the grad norm."""
    grads, norm = tf.clip_by_global_norm(grads, recipe.clip_norm)
    scaled = [(g + recipe.weight_decay * v) * m for g, v, m in zip(grads, variables, multipliers)]
    optimizer.apply(scaled, variables)
    return norm
