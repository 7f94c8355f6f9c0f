import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.evaluation.features import adaptive_avg_pool
from mtsyn_tf.evaluation.linear_probe import (
    AdaptivePoolFlatten,
    build_probe_model,
    linear_probe_tfds,
)
from mtsyn_tf.models import build_multitask_model
from tests.evaluation.tfds_fixtures import TinyStripes, prepared


def test_pool_layer_matches_numpy():
    f = np.random.default_rng(0).random((2, 13, 13, 3)).astype(np.float32)
    got = AdaptivePoolFlatten(5)(tf.constant(f)).numpy()
    np.testing.assert_allclose(got, adaptive_avg_pool(f, 5).reshape(2, -1), rtol=1e-5)


def test_probe_dims_follow_the_9k_rule(small_model):
    probe = build_probe_model(small_model, 3)
    dims = {n: probe.get_layer(f"{n}_linear").kernel.shape[0] for n in ("conv1", "conv5")}
    assert dims == {"conv1": 32 * 17 * 17, "conv5": 64 * 12 * 12}
    with pytest.raises(ValueError, match="Unknown taps"):
        build_probe_model(small_model, 3, taps=("conv1_2",))


def test_linear_probe_learns_stripes(tmp_path):
    """Stripe orientation is linearly readable from random conv1 features: top-1 ≫ chance."""
    tf.keras.utils.set_random_seed(0)
    builder = prepared(TinyStripes, tmp_path / "tfds")
    model = build_multitask_model("small")
    result = linear_probe_tfds(
        model, "tiny_stripes", builder=builder, batch_size=12, epochs=8, taps=("conv1", "conv2"),
        learning_rate=0.05,
    )  # fmt: skip
    assert result["num_test"] == TinyStripes.NUM_TEST
    assert result["top1"]["conv1"] >= 80.0, result  # chance is 33 %


def test_unprepared_dataset_names_the_build_command(tmp_path):
    with pytest.raises(ValueError, match="tfds build imagenet2012 --data_dir=.*manual_dir"):
        linear_probe_tfds(build_multitask_model("small"), "imagenet2012", data_dir=str(tmp_path))
