"""The preview grid shows a render's undenoised image next to the denoised one, and
noisy / denoised / reference crops."""

import cv2
import numpy as np

from mtsyn_tf.data import sample_grid


def _sample(seed, noisy):
    rng = np.random.default_rng(seed)
    s = {
        "image": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
        "depth": rng.uniform(1, 5, (16, 16)).astype(np.float32),
        "normals": np.tile(np.float32([0, 0, -1]), (16, 16, 1)),
        "contour": (rng.random((16, 16)) < 0.2).astype(np.uint8),
    }
    if noisy:
        s["image_noisy"] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return s


def test_noisy_column_precedes_the_denoised_image(tmp_path):
    samples = [_sample(0, noisy=True), _sample(1, noisy=False)]
    grid = cv2.imread(sample_grid.write_sample_grid(samples, str(tmp_path / "g.png")))[..., ::-1]
    assert grid.shape[1] == 5 * 160 + 4 * 4  # noisy | denoised | depth | normals | contour

    def tile(row, column):  # 16x16 tiles are upscaled 10x with nearest neighbours
        x0, y0 = column * (160 + 4), row * (160 + 4)
        return grid[y0 + 5 : y0 + 160 : 10, x0 + 5 : x0 + 160 : 10]

    np.testing.assert_array_equal(tile(0, 0), samples[0]["image_noisy"])
    np.testing.assert_array_equal(tile(0, 1), samples[0]["image"])
    assert np.all(tile(1, 0) == 128)  # a sample without a noisy image: grey tile
    np.testing.assert_array_equal(tile(1, 1), samples[1]["image"])
    plain = cv2.imread(sample_grid.write_sample_grid(samples[1:], str(tmp_path / "p.png")))
    assert plain.shape[1] == 4 * 160 + 3 * 4  # no noisy images: no extra column


def test_reference_crop_columns_show_the_same_window(tmp_path):
    """noisy | denoised | reference crops of reference_crop_box close each row."""
    with_crop = _sample(2, noisy=True)
    rng = np.random.default_rng(3)
    with_crop["image_reference_crop"] = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with_crop["reference_crop_box"] = (3, 5, 8)  # top, left, size
    samples = [with_crop, _sample(4, noisy=True)]
    grid = cv2.imread(sample_grid.write_sample_grid(samples, str(tmp_path / "c.png")))[..., ::-1]
    assert grid.shape[1] == 8 * 160 + 7 * 4  # 5 columns as before, then 3 crops

    def crop_tile(row, column):  # 8x8 crops are enlarged 20x with nearest neighbours
        x0, y0 = (5 + column) * (160 + 4), row * (160 + 4)
        return grid[y0 + 10 : y0 + 160 : 20, x0 + 10 : x0 + 160 : 20]

    window = (slice(3, 11), slice(5, 13))
    np.testing.assert_array_equal(crop_tile(0, 0), with_crop["image_noisy"][window])
    np.testing.assert_array_equal(crop_tile(0, 1), with_crop["image"][window])
    np.testing.assert_array_equal(crop_tile(0, 2), with_crop["image_reference_crop"])
    assert all(np.all(crop_tile(1, c) == 128) for c in range(3))  # no reference: grey
