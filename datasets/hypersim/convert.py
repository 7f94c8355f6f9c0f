"""Hypersim (Roberts et al., ICCV 2021) → our sample convention, in numpy.

Upstream layout under ``manual_dir`` (as unpacked from the official zips)::

    ai_VVV_NNN/images/scene_cam_XX_final_hdf5/frame.IIII.color.hdf5
    ai_VVV_NNN/images/scene_cam_XX_geometry_hdf5/frame.IIII.depth_meters.hdf5
    ai_VVV_NNN/images/scene_cam_XX_geometry_hdf5/frame.IIII.normal_cam.hdf5
    ai_VVV_NNN/images/scene_cam_XX_geometry_hdf5/frame.IIII.semantic_instance.hdf5
    ai_VVV_NNN/images/scene_cam_XX_geometry_hdf5/frame.IIII.render_entity_id.hdf5  (optional)
    metadata_images_split_scene_v1.csv  (optional: the official train/val/test split)

Each HDF5 file holds one array under the key ``"dataset"``. Conventions converted:

* ``depth_meters`` is the Euclidean distance from the optical centre along each ray
  (not planar depth) and NaN where there is no geometry → planar z-depth, 0 invalid.
* ``normal_cam`` is in Hypersim's camera frame (x right, y up, z pointing *backwards*,
  the camera looks down -z, as in OpenGL) → OpenCV frame (x right, y down, z forward)
  by ``diag(1, -1, -1)``, then unit-normalised and oriented toward the camera.
* ``color`` is linear HDR → 8-bit sRGB-ish by Hypersim's own tone-mapping recipe
  (scale so the 90th-percentile brightness maps to 0.8, then gamma 1/2.2).
* ``semantic_instance`` (-1 = unlabelled) → int32 instance ids; contours via Canny.
* Intrinsics: Hypersim's default camera, fov_x = 60° (pi/3) over the image width with
  square pixels (886.81 px for 1024×768). About a dozen scenes use non-standard
  (tilt-shift) cameras described in ``metadata_camera_parameters.csv``; they are not
  special-cased here, so exclude them or expect their geometry to be slightly off.
"""

from __future__ import annotations

import csv
import glob
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import h5py
import numpy as np

from mtsyn_tf import geometry

SOURCE = "hypersim"
FOV_X_DEGREES = 60.0
SPLIT_CSV = "metadata_images_split_scene_v1.csv"
# Hypersim camera frame (OpenGL-like) → OpenCV camera frame.
HYPERSIM_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
_COLOR_GLOB = os.path.join("ai_*", "images", "scene_cam_*_final_hdf5", "frame.*.color.hdf5")
_FRAME_RE = re.compile(r"frame\.(\d+)\.color\.hdf5$")
_GEOMETRY = ("depth_meters", "normal_cam", "semantic_instance")


@dataclass(frozen=True)
class Frame:
    """Paths of one Hypersim frame."""

    scene: str
    camera: str
    index: int
    color: str
    geometry_dir: str

    def geometry(self, name: str) -> str:
        return os.path.join(self.geometry_dir, f"frame.{self.index:04d}.{name}.hdf5")

    @property
    def image_id(self) -> str:
        return f"{self.scene}/{self.camera}/{self.index:04d}"


def find_frames(manual_dir: str) -> list[Frame]:
    """All complete frames under ``manual_dir``, sorted by (scene, camera, frame).

    Raises:
        ValueError: if the directory is missing, holds no ``*.color.hdf5`` in the
            upstream layout, or a frame lacks one of its geometry files (named).
    """
    if not os.path.isdir(manual_dir):
        raise ValueError(f"Hypersim manual_dir does not exist. Received: manual_dir={manual_dir!r}")
    frames = []
    for color in glob.glob(os.path.join(manual_dir, _COLOR_GLOB)):
        final_dir = os.path.dirname(color)
        scene = os.path.basename(os.path.dirname(os.path.dirname(final_dir)))
        # "scene_cam_00_final_hdf5" → "cam_00", the camera_name used by Hypersim's CSVs.
        camera = os.path.basename(final_dir)[len("scene_") : -len("_final_hdf5")]
        index = int(_FRAME_RE.search(color).group(1))
        frame = Frame(
            scene, camera, index, color, final_dir.replace("_final_hdf5", "_geometry_hdf5")
        )
        for name in _GEOMETRY:
            if not os.path.isfile(frame.geometry(name)):
                raise ValueError(
                    f"Hypersim frame {frame.image_id} has {color} but is missing "
                    f"{frame.geometry(name)}. Unpack the scene's geometry_hdf5 archive too."
                )
        frames.append(frame)
    if not frames:
        raise ValueError(
            f"No Hypersim frames found under {manual_dir!r}. Expected files like "
            f"{os.path.join(manual_dir, _COLOR_GLOB)} (see MANUAL_DOWNLOAD_INSTRUCTIONS)."
        )
    return sorted(frames, key=lambda f: (f.scene, f.camera, f.index))


def split_frames(frames: list[Frame], manual_dir: str) -> dict[str, list[Frame]]:
    """Groups frames by the official split CSV if present, else everything is "train".

    Frames the CSV marks ``included_in_public_release=False`` or does not list are dropped.
    """
    path = os.path.join(manual_dir, SPLIT_CSV)
    if not os.path.isfile(path):
        return {"train": list(frames)}
    partition = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                key = (row["scene_name"], row["camera_name"], int(row["frame_id"]))
                included = row["included_in_public_release"].strip().lower() == "true"
                split = row["split_partition_name"].strip()
            except (KeyError, ValueError) as e:
                raise ValueError(f"Malformed row in {path}: {row} ({e})") from None
            if included:
                partition[key] = split
    splits: dict[str, list[Frame]] = {}
    for frame in frames:
        split = partition.get((frame.scene, frame.camera, frame.index))
        if split:
            splits.setdefault(split, []).append(frame)
    return splits


def read_hdf5(path: str) -> np.ndarray:
    """The ``"dataset"`` array of a Hypersim HDF5 file; ValueError naming the path."""
    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f["dataset"][()])
    except (OSError, KeyError) as e:
        raise ValueError(
            f"Could not read the 'dataset' array from Hypersim file {path}: {e}"
        ) from None


def tonemap(color: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Hypersim's tone-mapping: 90th-percentile brightness → 0.8, gamma 1/2.2, to uint8."""
    gamma, percentile, target = 1.0 / 2.2, 90, 0.8
    rgb = np.nan_to_num(np.asarray(color, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    brightness = 0.3 * rgb[..., 0] + 0.59 * rgb[..., 1] + 0.11 * rgb[..., 2]
    pixels = brightness if mask is None or not mask.any() else brightness[mask]
    current = np.percentile(pixels, percentile)
    scale = 0.0 if current < 1e-4 else target ** (1.0 / gamma) / current
    mapped = np.power(np.maximum(scale * rgb, 0.0), gamma)
    return np.uint8(np.round(np.clip(mapped, 0.0, 1.0) * 255.0))


def convert_frame(
    color: np.ndarray,
    distance: np.ndarray,
    normal_cam: np.ndarray,
    instance: np.ndarray,
    render_entity_id: np.ndarray | None = None,
) -> dict:
    """Converts one frame's upstream arrays to sample arrays (ids added by the caller)."""
    height, width = distance.shape
    for name, array, shape in (
        ("color", color, (height, width, 3)),
        ("normal_cam", normal_cam, (height, width, 3)),
        ("semantic_instance", instance, (height, width)),
    ):
        if array.shape != shape:
            raise ValueError(f"Hypersim {name} must have shape {shape}. Received: {array.shape}")
    intrinsics = geometry.intrinsics_from_fov(width, height, FOV_X_DEGREES)
    depth = geometry.ray_distance_to_planar_depth(distance.astype(np.float64), intrinsics)
    valid = geometry.valid_mask(depth)
    normals = geometry.rotate_normals(normal_cam, HYPERSIM_TO_OPENCV)
    normals = geometry.normalize_and_orient(normals, intrinsics, mask=valid)
    instance = np.asarray(instance).astype(np.int32)
    mask = None if render_entity_id is None else np.asarray(render_entity_id) != -1
    return {
        "image": tonemap(color, mask),
        "depth": depth,
        "normals": normals,
        "instance": instance,
        "contour": geometry.contours_from_instances(instance),
        "valid": valid,
        "intrinsics": intrinsics.astype(np.float32),
    }


def load_sample(frame: Frame) -> dict:
    """Reads and converts one frame into a full CONTRACTS.md sample."""
    entity_path = frame.geometry("render_entity_id")
    sample = convert_frame(
        read_hdf5(frame.color),
        read_hdf5(frame.geometry("depth_meters")),
        read_hdf5(frame.geometry("normal_cam")),
        read_hdf5(frame.geometry("semantic_instance")),
        read_hdf5(entity_path) if os.path.isfile(entity_path) else None,
    )
    sample.update(scene_id=frame.scene, image_id=frame.image_id, source=SOURCE)
    return sample


def iter_samples(
    manual_dir: str, split: str = "train", max_examples: int | None = None
) -> Iterator[dict]:
    """Converted samples of one split (the helper behind make_tfrecords --source=hypersim)."""
    splits = split_frames(find_frames(manual_dir), manual_dir)
    if split not in splits:
        raise ValueError(
            f"Hypersim split {split!r} has no frames under {manual_dir!r}. Available: {sorted(splits)}"
        )
    for frame in itertools.islice(splits[split], max_examples):
        yield load_sample(frame)
