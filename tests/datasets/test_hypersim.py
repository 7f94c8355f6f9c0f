"""Hypersim converter and tfds builder against tiny fixtures in the upstream HDF5 layout."""

import os

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets.hypersim import convert
from mtsyn_tf import geometry

HEIGHT, WIDTH = 12, 16
# A tilted plane n.X = -2 in the OpenCV camera frame (n faces the camera).
NORMAL_CV = np.array([0.3, -0.2, -1.0]) / np.linalg.norm([0.3, -0.2, -1.0])
# The same normal as Hypersim stores it, written out from Hypersim's documented camera
# frame (x right, y up, z backwards: y and z flip), not with the converter's matrix, so a
# wrong conversion matrix cannot cancel against the fixture.
NORMAL_HYPERSIM = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])


def _plane():
    intrinsics = geometry.intrinsics_from_fov(WIDTH, HEIGHT, 60.0)
    rays = geometry.pixel_rays(HEIGHT, WIDTH, intrinsics)
    z = -2.0 / (rays @ NORMAL_CV)
    return z, z * np.linalg.norm(rays, axis=-1)


def _write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset", data=array)


def write_fixture(root, frames=(0, 1), split_csv=False):
    z, distance = _plane()
    distance = distance.astype(np.float16)
    distance[:2, :3] = np.nan  # no geometry (window / sky)
    normal = np.broadcast_to(NORMAL_HYPERSIM, (HEIGHT, WIDTH, 3)).copy()
    normal[:2, :3] = np.nan
    instance = np.full((HEIGHT, WIDTH), -1, np.int16)
    instance[:, WIDTH // 2 :] = 4
    for i in frames:
        color = np.full((HEIGHT, WIDTH, 3), 0.5 + i, np.float16)  # grey, linear HDR
        final = os.path.join(root, "ai_001_002", "images", "scene_cam_00_final_hdf5")
        geom = final.replace("_final_hdf5", "_geometry_hdf5")
        _write(os.path.join(final, f"frame.{i:04d}.color.hdf5"), color)
        _write(os.path.join(geom, f"frame.{i:04d}.depth_meters.hdf5"), distance)
        _write(os.path.join(geom, f"frame.{i:04d}.normal_cam.hdf5"), normal.astype(np.float16))
        _write(os.path.join(geom, f"frame.{i:04d}.semantic_instance.hdf5"), instance)
    if split_csv:
        rows = [
            "scene_name,camera_name,frame_id,included_in_public_release,exclude_reason,split_partition_name"
        ]
        rows += ["ai_001_002,cam_00,0,True,,train", "ai_001_002,cam_00,1,True,,val"]
        rows += ["ai_001_002,cam_00,2,False,bad,train"]
        open(os.path.join(root, convert.SPLIT_CSV), "w").write("\n".join(rows) + "\n")
    return z


def test_converted_plane(tmp_path):
    z = write_fixture(str(tmp_path))
    frames = convert.find_frames(str(tmp_path))
    assert [f.image_id for f in frames] == ["ai_001_002/cam_00/0000", "ai_001_002/cam_00/0001"]
    sample = convert.load_sample(frames[0])
    valid = np.ones((HEIGHT, WIDTH), bool)
    valid[:2, :3] = False
    np.testing.assert_array_equal(sample["valid"], valid)
    np.testing.assert_allclose(sample["depth"][valid], z[valid], rtol=1e-3)  # float16 input
    assert (sample["depth"][~valid] == 0).all()
    np.testing.assert_allclose(
        sample["normals"][valid], np.broadcast_to(NORMAL_CV, (valid.sum(), 3)), atol=2e-3
    )
    assert (sample["normals"][~valid] == 0).all()
    np.testing.assert_allclose(
        sample["intrinsics"],
        [WIDTH / 2 / np.tan(np.pi / 6), WIDTH / 2 / np.tan(np.pi / 6), 8, 6],
        rtol=1e-6,
    )
    # Uniform grey: the 90th percentile maps to 0.8 after gamma → 204.
    assert (sample["image"] == 204).all()
    assert sample["instance"].dtype == np.int32 and set(np.unique(sample["instance"])) == {-1, 4}
    assert (
        sample["contour"][:, WIDTH // 2 - 1 : WIDTH // 2 + 1].any()
        and not sample["contour"][:, :5].any()
    )
    from mtsyn_tf.data import schema

    schema.validate_synthetic(sample)


def _plane_normal_from_depth(depth, valid, fx, fy, cx, cy):
    """The unit normal of the plane through the back-projected depth pixels, toward the
    camera: a least-squares fit (SVD), written here from the pinhole model alone."""
    v, u = np.nonzero(valid)
    z = depth[v, u].astype(np.float64)
    points = np.stack([(u + 0.5 - cx) / fx * z, (v + 0.5 - cy) / fy * z, z], axis=-1)
    centred = points - points.mean(axis=0)
    normal = np.linalg.svd(centred)[2][-1]
    return -normal if normal @ points.mean(axis=0) > 0 else normal


def test_normals_agree_with_the_geometry_of_the_depth(tmp_path):
    """An independent frame check: the converted normals are those of the plane that the
    converted depth describes (a wrong axis flip in the normal conversion fails it)."""
    write_fixture(str(tmp_path), frames=(0,))
    sample = convert.load_sample(convert.find_frames(str(tmp_path))[0])
    valid = sample["valid"]
    fitted = _plane_normal_from_depth(sample["depth"], valid, *sample["intrinsics"])
    # The depth comes from float16 ray distances (relative error <= 2^-11 ~ 4.9e-4) over a
    # plane 1.4-3 m away spanning ~2 m: the fitted normal is good to ~1e-3 rad; the stored
    # float16 normals to ~1e-3 per component. 5e-3 leaves room for both; a flipped axis
    # moves a component by >= 0.38 (2 x 0.19, the smallest component).
    np.testing.assert_allclose(fitted, NORMAL_CV, atol=5e-3)
    np.testing.assert_allclose(
        sample["normals"][valid], np.broadcast_to(fitted, (valid.sum(), 3)), atol=5e-3
    )


def test_tone_mapping_of_a_non_uniform_frame():
    """Hypersim's tone mapping (scene_generate_images_tonemap.py): scale the linear colour
    so that the 90th percentile of brightness 0.3 R + 0.59 G + 0.11 B maps to 0.8 after the
    gamma 1/2.2, i.e. out = 0.8 * (c / p90) ** (1 / 2.2), clipped to [0, 1], times 255.

    The frame is built so that p90 is known without computing a percentile: 192 pixels,
    150 grey at 0.5, 30 at 2.0 and 12 at 8.0 (sorted positions 171 and 172, between which
    numpy's linear 90th percentile of 192 values lies, are both 2.0); one of the 0.5 pixels
    is pure red (brightness 0.3) to check the channel weights and per-channel scaling.
    """
    levels = np.array([0.5] * 150 + [2.0] * 30 + [8.0] * 12)
    color = np.repeat(levels[:, None], 3, axis=1).reshape(HEIGHT, WIDTH, 3)
    color[0, 0] = (1.0, 0.0, 0.0)

    def expected(c, p90):
        return np.round(np.clip(0.8 * (c / p90) ** (1 / 2.2), 0.0, 1.0) * 255.0)

    image = convert.tonemap(color.astype(np.float16))
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, expected(color, 2.0).astype(np.uint8))
    # Spot values: 0.5 -> 0.8 * 0.25**0.4545 = 0.426 -> 109; 2.0 -> 204; 8.0 clips to 255;
    # pure red 1.0 -> 0.8 * 0.5**0.4545 = 0.584 -> 149 in R, 0 in G and B.
    assert image[0, 1, 0] == 109 and image[-1, -1, 0] == 255
    assert (image[levels.reshape(HEIGHT, WIDTH) == 2.0] == 204).all()
    assert tuple(image[0, 0]) == (149, 0, 0)
    # A mask (render_entity_id != -1) restricts the percentile to its pixels: with the
    # 8.0 pixels and half the 2.0 ones masked out, 165 remain (150 at <= 0.5, 15 at 2.0);
    # the percentile's position 0.9 x 164 = 147.6 falls among the 0.5s, so p90 = 0.5.
    mask = levels.reshape(HEIGHT, WIDTH) < 8.0
    mask.reshape(-1)[150:165] = False
    np.testing.assert_array_equal(
        convert.tonemap(color.astype(np.float16), mask), expected(color, 0.5).astype(np.uint8)
    )


def test_split_csv(tmp_path):
    write_fixture(str(tmp_path), frames=(0, 1, 2), split_csv=True)
    splits = convert.split_frames(convert.find_frames(str(tmp_path)), str(tmp_path))
    assert {k: [f.index for f in v] for k, v in splits.items()} == {"train": [0], "val": [1]}
    assert [s["image_id"] for s in convert.iter_samples(str(tmp_path), "val")] == [
        "ai_001_002/cam_00/0001"
    ]
    with pytest.raises(ValueError, match=r"split 'test' .* Available: \['train', 'val'\]"):
        list(convert.iter_samples(str(tmp_path), "test"))


def test_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        convert.find_frames(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="No Hypersim frames.*frame.\\*.color.hdf5"):
        convert.find_frames(str(tmp_path))
    write_fixture(str(tmp_path), frames=(0,))
    normal = tmp_path / "ai_001_002/images/scene_cam_00_geometry_hdf5/frame.0000.normal_cam.hdf5"
    normal.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="frame.0000.normal_cam.hdf5"):
        convert.load_sample(convert.find_frames(str(tmp_path))[0])
    normal.unlink()
    with pytest.raises(ValueError, match="missing .*frame.0000.normal_cam.hdf5"):
        convert.find_frames(str(tmp_path))


def test_tfds_builder(tmp_path):
    from datasets.hypersim.hypersim_dataset_builder import Hypersim

    manual = str(tmp_path / "manual")
    z = write_fixture(manual)
    builder = Hypersim(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
    examples = list(builder.as_dataset(split="train").as_numpy_iterator())
    assert len(examples) == 2
    valid = examples[0]["valid"]
    assert examples[0]["depth"].dtype == np.float32
    np.testing.assert_allclose(examples[0]["depth"][valid], z[valid], rtol=1e-3)
    reference = convert.load_sample(convert.find_frames(manual)[0])
    byid = {e["image_id"].decode(): e for e in examples}
    np.testing.assert_array_equal(byid["ai_001_002/cam_00/0000"]["normals"], reference["normals"])
