"""SceneNet RGB-D converter and tfds builder against tiny fixtures in the upstream layout."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets.scenenet_rgbd import convert
from mtsyn_tf import geometry
from mtsyn_tf.data import schema

HEIGHT, WIDTH = 24, 32
NORMAL_CV = np.array([-0.25, 0.3, -1.0]) / np.linalg.norm([-0.25, 0.3, -1.0])


def _plane_ray_mm():
    intrinsics = convert.scenenet_intrinsics(WIDTH, HEIGHT)
    rays = geometry.pixel_rays(HEIGHT, WIDTH, intrinsics)
    z = -3.0 / (rays @ NORMAL_CV)  # plane n.X = -3 m
    return z, np.round(z * np.linalg.norm(rays, axis=-1) * 1000.0).astype(np.uint16)


def write_fixture(root, split="train", frames=(0, 25)):
    z, ray_mm = _plane_ray_mm()
    ray_mm[-3:, -4:] = 0  # no return
    traj = os.path.join(root, split, "0", "223")
    for kind in ("photo", "depth", "instance"):
        os.makedirs(os.path.join(traj, kind), exist_ok=True)
    instance = np.zeros((HEIGHT, WIDTH), np.uint16)
    instance[HEIGHT // 2 :] = 300
    for i in frames:
        photo = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        photo[..., 2] = 200  # red in BGR
        assert cv2.imwrite(os.path.join(traj, "photo", f"{i}.jpg"), photo)
        assert cv2.imwrite(os.path.join(traj, "depth", f"{i}.png"), ray_mm)
        assert cv2.imwrite(os.path.join(traj, "instance", f"{i}.png"), instance)
    return z


def test_intrinsics_match_scenenet_fov():
    np.testing.assert_allclose(
        convert.scenenet_intrinsics(320, 240), [277.128, 289.706, 160, 120], atol=1e-3
    )


def test_converted_plane(tmp_path):
    z = write_fixture(str(tmp_path))
    frames = convert.find_frames(str(tmp_path), "train")
    assert [f.image_id for f in frames] == ["train/0/223/0", "train/0/223/25"]
    sample = convert.load_sample(frames[0])
    schema.validate_synthetic(sample)
    valid = np.ones((HEIGHT, WIDTH), bool)
    valid[-3:, -4:] = False
    np.testing.assert_array_equal(sample["valid"], valid)
    np.testing.assert_allclose(sample["depth"][valid], z[valid], atol=1e-3)  # mm quantisation
    # Normals from depth: the plane's normal wherever the 4-neighbourhood is valid.
    has_normal = np.linalg.norm(sample["normals"], axis=-1) > 0
    assert has_normal.sum() > 0.8 * valid.sum() and not has_normal[~valid].any()
    cosine = sample["normals"][has_normal] @ NORMAL_CV
    assert cosine.min() > np.cos(np.deg2rad(1.0))
    assert sample["image"][..., 0].mean() > 190 and sample["image"][..., 2].max() < 20  # RGB order
    assert set(np.unique(sample["instance"])) == {0, 300}
    np.testing.assert_array_equal(
        sample["contour"], geometry.contours_from_instances(sample["instance"])
    )
    edge_rows = np.flatnonzero(sample["contour"].any(axis=1))
    assert len(edge_rows) > 0 and set(edge_rows) <= {HEIGHT // 2 - 1, HEIGHT // 2}
    assert sample["contour"][edge_rows].all()  # the boundary spans the full width


def test_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        convert.find_frames(str(tmp_path / "missing"), "train")
    with pytest.raises(ValueError, match="No SceneNet RGB-D frames for split 'train'.*photo"):
        convert.find_frames(str(tmp_path), "train")
    write_fixture(str(tmp_path), frames=(0,))
    depth = tmp_path / "train/0/223/depth/0.png"
    depth.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="depth PNG: .*223/depth/0.png"):
        list(convert.iter_samples(str(tmp_path)))
    depth.unlink()
    with pytest.raises(ValueError, match="missing .*223/depth/0.png"):
        convert.find_frames(str(tmp_path), "train")


def test_tfds_builder(tmp_path):
    from datasets.scenenet_rgbd.scenenet_rgbd_dataset_builder import ScenenetRgbd

    manual = str(tmp_path / "manual")
    write_fixture(manual, "val", frames=(0, 25, 50))
    builder = ScenenetRgbd(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
    assert list(builder.info.splits) == ["val"]
    examples = list(builder.as_dataset(split="val").as_numpy_iterator())
    reference = convert.load_sample(convert.find_frames(manual, "val")[0])
    first = [e for e in examples if e["image_id"] == b"val/0/223/0"][0]
    for key in ("depth", "normals", "valid", "contour", "intrinsics"):
        np.testing.assert_array_equal(first[key], reference[key], err_msg=key)
