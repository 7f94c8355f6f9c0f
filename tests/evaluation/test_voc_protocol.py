"""VOC transfer as the paper runs it (issue 12, item 4): rescaling first, the reference recipe.

* Krähenbühl rescaling is applied by default before fine-tuning, and after it every
  parameter layer's pre-activations have one std across channels (1 after the
  within-layer step) and every layer the same gradient/weight ratio.
* The VOC07 recipe's per-layer learning rates (fc6–fc8 ×10, biases ×2 on top), weight
  decay, clipping and step schedule are what the update applies.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from mtsyn_tf.evaluation import fast_rcnn
from mtsyn_tf.evaluation.voc_classification import finetune_voc07, voc_classifier
from mtsyn_tf.evaluation.voc_recipe import VOC07Recipe, apply_recipe_update, lr_multipliers
from mtsyn_tf.export.alexnet_convert import PARAM_LAYERS, preactivation_model
from mtsyn_tf.export.rescale import gradient_ratios, standard_alexnet_for_finetuning
from mtsyn_tf.models import build_multitask_model
from tests.evaluation.test_fast_rcnn import voc_dir  # noqa: F401, F811 - fixture
from tests.evaluation.tfds_fixtures import TinyVoc
from tests.export.conftest import astronaut, randomize_batchnorm


@pytest.fixture(scope="module")
def bn_model():
    keras.utils.set_random_seed(0)
    return randomize_batchnorm(build_multitask_model("small"))


@pytest.fixture(scope="module")
def rescale_images():
    rng = np.random.default_rng(3)
    return np.concatenate([astronaut()[None], rng.random((5, 227, 227, 3), dtype=np.float32)])


def _channel_stds(alexnet, images) -> dict:
    """Per layer: std over images and positions of each channel's pre-activation (float64)."""
    out = preactivation_model(alexnet)(images, training=False)
    stds = {}
    for name in PARAM_LAYERS:
        value = out[name].numpy().astype(np.float64).reshape(-1, out[name].shape[-1])
        std = value.std(axis=0)
        stds[name] = std[std > 1e-8 * max(std.max(), 1e-30)]  # dead channels keep their scale
    return stds


# === Rescaling ===
def test_rescaling_normalises_per_channel_preactivation_statistics(bn_model, rescale_images):
    plain, report = standard_alexnet_for_finetuning(bn_model, None)
    assert report is None
    before = _channel_stds(plain, rescale_images)
    # The converted net is far from normalised: channels of one layer differ in scale.
    assert max(s.max() / s.min() for s in before.values()) > 1.5
    rescaled, report = standard_alexnet_for_finetuning(bn_model, rescale_images)
    assert set(report) == {"within_layer_sigmas", "gradient_ratios"}
    after = _channel_stds(rescaled, rescale_images)
    for name in PARAM_LAYERS:
        # Within a layer every channel has the same std (the between-layer step multiplies
        # the whole layer by one factor). Float32 forward passes of the same images before
        # and after a per-channel weight scaling: relative differences ~1e-6; 1e-3 bound.
        spread = after[name].max() / after[name].min() - 1.0
        assert spread < 1e-3, (name, spread)
    # And every layer learns at the same relative rate (the between-layer step's target).
    top = tf.constant(
        np.random.default_rng(0).standard_normal((len(rescale_images), 256)), tf.float32
    )
    ratios = np.array(list(gradient_ratios(rescaled, rescale_images, top).values()))
    assert ratios.max() / ratios.min() < 1.05, ratios


def test_within_layer_step_sets_unit_std(bn_model, rescale_images):
    from mtsyn_tf.export.rescale import krahenbuhl_rescale

    alexnet, _ = standard_alexnet_for_finetuning(bn_model, None)
    krahenbuhl_rescale(alexnet, rescale_images, between_layer=False)
    for name, std in _channel_stds(alexnet, rescale_images).items():
        np.testing.assert_allclose(std, 1.0, rtol=1e-3, err_msg=name)


@pytest.fixture(scope="module")
def voc_builder(tmp_path_factory):
    builder = TinyVoc(config="2007", data_dir=str(tmp_path_factory.mktemp("tfds")))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig())
    return builder


def test_finetune_rescales_by_default_and_reports_both_crop_counts(voc_builder):
    model = build_multitask_model("small")
    result = finetune_voc07(model, builder=voc_builder, steps=2, batch_size=4)
    assert result["rescaled"] is True and "Krähenbühl" in result["protocol"]
    assert set(result["map_by_crops"]) == {"center", "ten"}
    assert result["map"] == result["map_by_crops"]["ten"]
    assert result["input_contract"] == {"color_mode": "rgb"}  # the reference fine-tunes colour
    assert result["recipe"]["steps"] == 2 and result["recipe"]["head_lr_mult"] == 10.0
    off = finetune_voc07(model, builder=voc_builder, steps=1, batch_size=4, rescale=False)
    assert off["rescaled"] is False


# === The recipe ===
def test_recipe_defaults_are_the_reference_settings():
    r = VOC07Recipe()
    assert (r.steps, r.batch_size, r.learning_rate, r.lr_decay, r.lr_step) == (
        80_000, 16, 1e-3, 0.5, 10_000
    )  # fmt: skip
    assert (r.head_layers, r.head_lr_mult, r.bias_lr_mult) == (("fc6", "fc7", "fc8_cls"), 10, 2)
    assert (r.weight_decay, r.clip_norm, r.momentum, r.dropout) == (1e-6, 10.0, 0.9, 0.5)
    schedule = r.schedule()
    for step, lr in ((0, 1e-3), (9_999, 1e-3), (10_000, 5e-4), (79_999, 1e-3 * 0.5**7)):
        assert float(schedule(step)) == pytest.approx(lr, rel=1e-6)


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    net, _ = voc_classifier(build_multitask_model("small"), VOC07Recipe())
    return net


def _expected_multiplier(variable) -> float:
    layer = variable.path.split("/")[-2]
    head = 10.0 if layer in ("fc6", "fc7", "fc8_cls") else 1.0
    return head * (2.0 if variable.path.endswith("bias") else 1.0)


def test_one_step_moves_each_layer_at_its_learning_rate(classifier):
    recipe = VOC07Recipe()
    variables = classifier.trainable_variables
    assert {v.path.split("/")[-2] for v in variables} >= set(PARAM_LAYERS) | {"fc8_cls"}
    multipliers = lr_multipliers(classifier, recipe)
    assert multipliers == [_expected_multiplier(v) for v in variables]
    saved = [v.numpy() for v in variables]
    try:
        for v in variables:
            v.assign(tf.zeros_like(v))  # Δw is then exactly the update (no weight decay term)
        count = sum(int(np.prod(v.shape)) for v in variables)
        c = 0.5 * recipe.clip_norm / np.sqrt(count)  # global norm 5 < 10: not clipped
        grads = [tf.fill(v.shape, np.float32(c)) for v in variables]
        optimizer = recipe.optimizer()
        optimizer.build(variables)
        apply_recipe_update(optimizer, grads, variables, multipliers, recipe)
        for v in variables:
            # First momentum step from zero: Δw = −lr · lr_mult · g (float32, rel. ~1e-7).
            expected = -recipe.learning_rate * _expected_multiplier(v) * c
            np.testing.assert_allclose(v.numpy(), expected, rtol=1e-5, err_msg=v.path)
        # Clipping: 100× larger gradients (norm 500) are scaled back to norm 10, i.e. the
        # second step moves by 10/5 = 2× the first (plus 0.9× the first as momentum).
        before = [v.numpy() for v in variables]
        apply_recipe_update(optimizer, [g * 100.0 for g in grads], variables, multipliers, recipe)
        for v, b in zip(variables, before):
            step = -recipe.learning_rate * _expected_multiplier(v) * c
            expected_delta = (
                0.9 * step
                + 2.0 * step
                + (-recipe.learning_rate * _expected_multiplier(v) * recipe.weight_decay * b)
            )
            np.testing.assert_allclose(v.numpy() - b, expected_delta, rtol=1e-4, err_msg=v.path)
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)


def test_weight_decay_is_scaled_by_the_layer_rate(classifier):
    # A large decay and lr 1 so the decay step is exact in float32 (1e-6 on weights of 1
    # would fall below float32's resolution at 1).
    recipe = dataclasses.replace(VOC07Recipe(), weight_decay=0.25)
    variables = classifier.trainable_variables
    saved = [v.numpy() for v in variables]
    try:
        for v in variables:
            v.assign(tf.ones_like(v))
        optimizer = keras.optimizers.SGD(1.0)
        optimizer.build(variables)
        zero = [tf.zeros_like(v) for v in variables]
        apply_recipe_update(optimizer, zero, variables, lr_multipliers(classifier, recipe), recipe)
        for v in variables:
            np.testing.assert_allclose(v.numpy(), 1.0 - 0.25 * _expected_multiplier(v))
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)


def test_detection_rescales_by_default(voc_dir):  # noqa: F811 - the imported fixture
    data_dir, _ = voc_dir
    model = build_multitask_model("small")
    kwargs = dict(proposals="gt_jitter", steps=1, images_per_batch=1, scale=64, max_test=1)
    on = fast_rcnn.voc_detection(model, "2007", data_dir, **kwargs)
    assert on["rescaled"] is True and "Krähenbühl" in on["protocol"]
    assert (
        fast_rcnn.voc_detection(model, "2007", data_dir, rescale=False, **kwargs)["rescaled"]
        is False
    )
