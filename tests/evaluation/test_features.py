import numpy as np
import pytest

from mtsyn_tf.evaluation.features import (
    adaptive_avg_pool,
    extract_features,
    probe_grid_size,
    square_resize,
)


def test_probe_grid_reproduces_paper_dimensions():
    paper = {"conv1": (55, 96), "conv2": (27, 256), "conv3": (13, 384), "conv4": (13, 384),
             "conv5": (13, 256)}  # fmt: skip
    dims = {t: c * probe_grid_size(h, c) ** 2 for t, (h, c) in paper.items()}
    assert dims == {"conv1": 9600, "conv2": 9216, "conv3": 9600, "conv4": 9600, "conv5": 9216}
    assert probe_grid_size(3, 8) == 3  # never larger than the map


def test_adaptive_pool_matches_bruteforce_bins():
    rng = np.random.default_rng(0)
    f = rng.random((2, 13, 11, 4)).astype(np.float32)
    got = adaptive_avg_pool(f, 5)
    for i in range(5):
        r0, r1 = (i * 13) // 5, -(-(i + 1) * 13 // 5)
        for j in range(5):
            c0, c1 = (j * 11) // 5, -(-(j + 1) * 11 // 5)
            np.testing.assert_allclose(
                got[:, i, j], f[:, r0:r1, c0:c1].mean(axis=(1, 2)), rtol=1e-5
            )
    # Identity when the grid equals the map size.
    np.testing.assert_allclose(adaptive_avg_pool(f[:, :5, :5], 5), f[:, :5, :5], rtol=1e-6)


def test_square_resize_and_extract(small_model):
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 10:50] = 255  # the centre 40x40 crop is all white
    out = square_resize(image, 8)
    assert out.shape == (8, 8, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0)
    x = np.stack([square_resize(image, 227)] * 3)
    feats = extract_features(small_model, x, ["conv1", "conv5"], batch_size=2)
    assert feats["conv1"].shape == (3, 55, 55, 32) and feats["conv5"].shape == (3, 13, 13, 64)
    with pytest.raises(ValueError, match="227"):
        extract_features(small_model, x[:, :100, :100], ["conv1"])
    with pytest.raises(ValueError, match="Unknown tap"):
        extract_features(small_model, x, ["conv9"])
