import cv2
import numpy as np
import pytest

from mtsyn_tf import visualize
from mtsyn_tf.data import sample_grid


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


def test_grid_colours_come_from_visualize(tmp_path, make_sample):
    sample = make_sample(16, 16, seed=0, image_id="i0")
    grid = cv2.imread(sample_grid.write_sample_grid([sample], str(tmp_path / "g.png")))[..., ::-1]

    def tile(column):  # 16x16 tiles are upscaled 10x with nearest neighbours
        x0 = column * (160 + 4)
        return grid[5:160:10, x0 + 5 : x0 + 160 : 10]

    np.testing.assert_array_equal(tile(0), sample["image"])
    np.testing.assert_array_equal(tile(1), visualize.colorize_depth(sample["depth"]))
    np.testing.assert_array_equal(tile(2), visualize.colorize_normals(sample["normals"]))
    np.testing.assert_array_equal(tile(3), visualize.colorize_contour(sample["contour"]))
    assert tile(3).max() == 255 and tile(1)[0, 0].tolist() == [0, 0, 0]  # white edges, void black
