"""predict_folder from a SavedModel export (and a checkpoint); input errors."""

import os

import numpy as np
import pytest
from PIL import Image

from mtsyn_tf.export.predictor import Predictor, load_image, predict_folder
from mtsyn_tf.export.serving import export_for_serving
from tests.export.conftest import write_workdir


@pytest.fixture(scope="module")
def model_base_path(small_model, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("predict") / "mtsyn")
    export_for_serving(small_model, base, warmup=False)
    return base


def test_predict_folder_from_saved_model(small_model, model_base_path, photo_dir, tmp_path):
    predictor = Predictor(model_base_path)  # base path → newest version
    out = tmp_path / "out"
    files = predict_folder(predictor, str(photo_dir), str(out), batch_size=2, save_raw=True)
    assert [os.path.basename(f) for f in files] == ["a.jpg", "b.png", "c.png"]
    for stem in ("a", "b", "c"):
        for key in ("depth", "normals", "contour"):
            assert np.asarray(Image.open(out / f"{stem}_{key}.png")).shape == (227, 227, 3)
        assert np.asarray(Image.open(out / f"{stem}_sheet.png")).shape == (227, 4 * 227 + 12, 3)
    image = load_image(str(photo_dir / "c.png"), 227)
    expected = small_model.predict_physical(image[None])
    for key in ("depth", "normals", "contour"):
        np.testing.assert_allclose(np.load(out / f"c_{key}.npy"), expected[key][0], atol=1e-5)
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no temporary files


def test_predict_from_checkpoint(small_model, photo_dir, tmp_path):
    write_workdir(small_model, str(tmp_path / "run"))
    predictor = Predictor(str(tmp_path / "run"))
    predict_folder(predictor, str(photo_dir), str(tmp_path / "out"), save_raw=True)
    image = load_image(str(photo_dir / "a.jpg"), 227)
    expected = small_model.predict_physical(image[None])["depth"][0]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "a_depth.npy"), expected, atol=1e-5)


def test_input_errors(model_base_path, photo_dir, tmp_path):
    predictor = Predictor(model_base_path)
    with pytest.raises(ValueError, match="Input directory does not exist"):
        predict_folder(predictor, str(tmp_path / "missing"), str(tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        predict_folder(predictor, str(tmp_path / "empty"), str(tmp_path / "out"))
    (photo_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="broken.png"):
        predict_folder(predictor, str(photo_dir), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="Model path does not exist"):
        Predictor(str(tmp_path / "no_model"))
