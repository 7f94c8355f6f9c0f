import cv2
import numpy as np
import pytest

from mtsyn_tf.evaluation import qualitative
from mtsyn_tf.evaluation.report import Section, Table, report_directory, write_report


def test_cosine_neighbours_closed_form():
    db = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    idx = qualitative.cosine_neighbours(db[:2], db, k=2, exclude_self=True)
    np.testing.assert_array_equal(idx, [[1, 2], [0, 2]])
    with pytest.raises(ValueError, match="exceeds"):
        qualitative.cosine_neighbours(db[:1], db, k=4, exclude_self=True)


def test_filter_grid_and_tiles(tmp_path, small_model):
    kernel = qualitative.first_conv_kernel(small_model)
    assert kernel.shape == (11, 11, 3, 32)
    tiles = qualitative.filter_tiles(kernel)
    assert tiles[0].min() == 0.0 and tiles[0].max() == 1.0
    out = qualitative.conv1_filter_grid(small_model, str(tmp_path / "f.png"), columns=8, tile=20)
    sheet = cv2.imread(str(tmp_path / "f.png"))
    assert out["num_filters"] == 32 and sheet.shape[1] == 8 * 20 + 9 * 4


def test_prediction_grid_and_neighbours(tmp_path, small_model, tiny_images):
    n = len(tiny_images)
    batch = {
        "image": tiny_images,
        "depth": np.full((n, 227, 227, 1), 2.0, np.float32),
        "normals": np.tile(np.array([0, 0, -1], np.float32), (n, 227, 227, 1)),
        "contour": np.zeros((n, 227, 227, 1), np.float32),
        "valid": np.ones((n, 227, 227, 1), np.float32),
    }
    qualitative.prediction_grid(small_model, batch, str(tmp_path / "p.png"))
    assert cv2.imread(str(tmp_path / "p.png")).shape[0] > n * 128
    # Retrieval: a database with an exact duplicate finds it first.
    db = np.concatenate([tiny_images[:1], tiny_images])
    r = qualitative.nearest_neighbour_sheet(
        {"a": (small_model, False)}, db, str(tmp_path / "nn.png"), num_queries=2, k=2
    )
    assert r["neighbours"]["a"][0][0] == 1 and r["neighbours"]["a"][1][0] == 0


def test_report_is_all_or_nothing(tmp_path):
    out = tmp_path / "rep"
    with report_directory(str(out)) as tmp:
        write_report(tmp, "T", [Section("s", tables=[Table("t", ["a", "b"], [["x", 0.5]])])],
                     {"v": np.float32(0.5), "nan": float("nan")})  # fmt: skip
    assert "| x | 0.500 |" in (out / "report.md").read_text()
    assert '"nan": null' in (out / "results.json").read_text()
    with pytest.raises(ValueError, match="existing path"):
        with report_directory(str(out)) as tmp:
            write_report(tmp, "T2", [Section("s", images=[("missing", "no.png")])], {})
    assert "# T\n" in (out / "report.md").read_text()  # the previous report survives
    with pytest.raises(ValueError, match="cells"):
        Table("t", ["a"], [[1, 2]])
