import cv2
import h5py
import numpy as np
import pytest
from scipy.io import savemat

from mtsyn_tf import geometry
from mtsyn_tf.evaluation import nyud
from mtsyn_tf.evaluation.nyud_normals import (
    evaluate_normals,
    finetune_normals,
    nyud_normals,
    to_model_view,
)
from mtsyn_tf.metrics import normal_metrics
from mtsyn_tf.models import build_multitask_model

H, W, N = 24, 32, 6
INTRINSICS = (30.0, 30.0, 16.0, 12.0)


def _scene(i):
    """A tilted plane (so normals are non-trivial) and an image whose pixels encode (y, x)."""
    rays = geometry.pixel_rays(H, W, np.asarray(INTRINSICS))
    normal = np.array([0.3 * (i % 3 - 1), -0.2, -1.0])
    normal /= np.linalg.norm(normal)
    depth = (-2.0 / (rays @ normal)).astype(np.float32)
    yy, xx = np.mgrid[:H, :W]
    image = np.stack([yy * 10 % 256, xx * 7 % 256, np.full((H, W), i * 40)], -1).astype(np.uint8)
    return image, depth


@pytest.fixture(scope="module")
def nyud_files(tmp_path_factory):
    """A v7.3-like labeled file (h5py, MATLAB order) and a v5 splits.mat, 1-based indices."""
    root = tmp_path_factory.mktemp("nyud")
    scenes = [_scene(i) for i in range(N)]
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = np.stack([im.transpose(2, 1, 0) for im, _ in scenes])  # [N, 3, W, H]
        f["depths"] = np.stack([d.T for _, d in scenes])  # [N, W, H]
    savemat(
        root / "splits.mat",
        {"trainNdxs": np.array([[1], [2], [3], [4]]), "testNdxs": np.array([[5], [6]])},
    )
    return str(root / "nyu_depth_v2_labeled.mat"), str(root / "splits.mat"), scenes


def test_reader_undoes_matlab_order(nyud_files):
    mat, splits, scenes = nyud_files
    samples = list(nyud.iter_nyud(mat, splits, "test", intrinsics=INTRINSICS))
    assert [s["index"] for s in samples] == [4, 5]
    image, depth = scenes[4]
    np.testing.assert_array_equal(samples[0]["image"], image)
    np.testing.assert_array_equal(samples[0]["depth"], depth)
    np.testing.assert_allclose(
        samples[0]["normals"], geometry.normals_from_depth(depth, np.asarray(INTRINSICS))
    )


def test_bad_files_are_named(tmp_path, nyud_files):
    mat, splits, _ = nyud_files
    with pytest.raises(ValueError, match="not found"):
        list(nyud.iter_nyud(str(tmp_path / "x.mat"), splits, "train"))
    savemat(tmp_path / "v5.mat", {"images": np.zeros(3)})
    with pytest.raises(ValueError, match="v7.3"):
        list(nyud.iter_nyud(str(tmp_path / "v5.mat"), splits, "train"))
    savemat(tmp_path / "bad_splits.mat", {"trainNdxs": np.array([[0], [9]])})
    with pytest.raises(ValueError, match="1-based"):
        list(nyud.iter_nyud(mat, str(tmp_path / "bad_splits.mat"), "train"))


def test_finetune_improves_and_metrics_match_numpy(nyud_files):
    mat, splits, _ = nyud_files
    model = build_multitask_model("small_vgg16")
    test = list(nyud.iter_nyud(mat, splits, "test", intrinsics=INTRINSICS))
    before = evaluate_normals(model, test)
    result = nyud_normals(
        model, mat, splits, steps=12, batch_size=4, learning_rate=3e-3, intrinsics=INTRINSICS
    )
    after = result["metrics"]
    assert result["num_train"] == 4 and after["num_images"] == 2
    assert after["mean"] < before["mean"] - 5.0, (before["mean"], after["mean"])
    # The evaluation equals normal_metrics on the predictions resized back to the crop.
    preds, gts = [], []
    for sample in test:
        view_image, _ = to_model_view(sample, model.image_size)
        p = np.asarray(model.predict_physical(view_image[None])["normals"][0])
        preds.append(cv2.resize(p, (H, H), interpolation=cv2.INTER_LINEAR))
        gts.append(sample["normals"][:, (W - H) // 2 : (W - H) // 2 + H])
    want = normal_metrics(np.stack(preds), np.stack(gts))
    assert after["mean"] == pytest.approx(want["mean"], rel=1e-4)
    assert after["median"] == pytest.approx(want["median"], abs=0.01)
    assert after["pct_22_5"] == pytest.approx(want["pct_22_5"])


def test_finetune_shape_errors():
    model = build_multitask_model("small_vgg16")
    with pytest.raises(ValueError, match="shapes differ"):
        finetune_normals(model, np.zeros((2, 224, 224, 3)), np.zeros((2, 224, 224, 1)), steps=1)
    depth_only = build_multitask_model("small", tasks=("depth",))
    with pytest.raises(ValueError, match="no normals head"):
        finetune_normals(
            depth_only, np.zeros((1, 227, 227, 3)), np.zeros((1, 227, 227, 3)), steps=1
        )
