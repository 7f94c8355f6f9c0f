import cv2
import numpy as np
import pytest

from mtsyn_tf.data import sample_grid


def test_colorizers_closed_form():
    normals = np.zeros((2, 2, 3), np.float32)
    normals[0, 0] = (0, 0, -1)
    np.testing.assert_array_equal(sample_grid.colorize_normals(normals)[0, 0], [127, 127, 0])
    np.testing.assert_array_equal(sample_grid.colorize_normals(normals)[1, 1], [0, 0, 0])
    depth = np.array([[1.0, 2.0], [0.0, np.nan]], np.float32)
    colour = sample_grid.colorize_depth(depth)
    assert colour[0, 0].sum() > colour[0, 1].sum()  # near is brighter
    np.testing.assert_array_equal(colour[1], 0)


def test_grid_layout(tmp_path, make_sample):
    samples = [make_sample(16, 24, seed=i, image_id=f"i{i}") for i in range(3)]
    samples.append({"image": np.zeros((10, 10, 3), np.uint8), "image_id": "r", "source": "real"})
    path = sample_grid.write_sample_grid(samples, str(tmp_path / "grid.png"), max_rows=3)
    grid = cv2.imread(path)
    tile_width = round(160 * 24 / 16)
    assert grid.shape == (3 * 160 + 2 * 4, 4 * tile_width + 3 * 4, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    batch = {
        "image": np.zeros((2, 8, 8, 3), np.float32),
        "depth": np.ones((2, 8, 8, 1), np.float32),
    }
    grid = cv2.imread(sample_grid.write_sample_grid(batch, str(tmp_path / "b.png")))
    assert grid.shape[0] == 2 * 160 + 4
    with pytest.raises(ValueError, match="No samples"):
        sample_grid.write_sample_grid([], str(tmp_path / "c.png"))
