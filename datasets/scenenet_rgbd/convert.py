"""SceneNet RGB-D (McCormac et al., ICCV 2017) → our sample convention, in numpy.

Upstream layout under ``manual_dir`` (the official train_N / val tarballs unpacked)::

    <split>/<N>/<trajectory>/photo/<frame>.jpg       RGB, 320×240
    <split>/<N>/<trajectory>/depth/<frame>.png       uint16, millimetres, 0 = no return
    <split>/<N>/<trajectory>/instance/<frame>.png    instance ids (uint8/uint16)

Conventions converted:

* depth PNGs hold the Euclidean distance from the camera centre along each pixel's
  ray (the pySceneNetRGBD tools back-project with unit-length ray directions times the
  depth value), in millimetres → planar z-depth in metres.
* The camera is a pinhole with a 60° horizontal and 45° vertical field of view, so
  fx ≠ fy: at 320×240, fx = 160 / tan 30° ≈ 277.13 px, fy = 120 / tan 22.5° ≈ 289.71 px,
  principal point at the image centre. Other image sizes scale the same fields of view.
* SceneNet ships no normals: they are computed from the planar depth with
  ``mtsyn_tf.geometry.normals_from_depth`` (the same definition as for NYUD v2).
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from mtsyn_tf import geometry

SOURCE = "scenenet_rgbd"
FOV_X_DEGREES = 60.0
FOV_Y_DEGREES = 45.0
SPLITS = ("train", "val")


def scenenet_intrinsics(width: int, height: int) -> np.ndarray:
    """``(fx, fy, cx, cy)`` of SceneNet's 60°×45° camera at the given image size."""
    fx = 0.5 * width / np.tan(np.deg2rad(FOV_X_DEGREES) / 2.0)
    fy = 0.5 * height / np.tan(np.deg2rad(FOV_Y_DEGREES) / 2.0)
    return np.array([fx, fy, width / 2.0, height / 2.0], dtype=np.float64)


@dataclass(frozen=True)
class Frame:
    """Paths of one SceneNet RGB-D frame."""

    split: str
    trajectory: str  # "<N>/<trajectory>", unique within a split
    index: int
    trajectory_dir: str

    def path(self, kind: str) -> str:
        ext = "jpg" if kind == "photo" else "png"
        return os.path.join(self.trajectory_dir, kind, f"{self.index}.{ext}")

    @property
    def image_id(self) -> str:
        return f"{self.split}/{self.trajectory}/{self.index}"


def find_frames(manual_dir: str, split: str) -> list[Frame]:
    """All frames of ``split``, sorted by trajectory then frame number.

    Raises:
        ValueError: if the directory/split is missing, no ``photo/*.jpg`` exist in the
            upstream layout, or a frame lacks its depth or instance PNG (named).
    """
    if not os.path.isdir(manual_dir):
        raise ValueError(
            f"SceneNet RGB-D manual_dir does not exist. Received: manual_dir={manual_dir!r}"
        )
    pattern = os.path.join(manual_dir, split, "*", "*", "photo", "*.jpg")
    frames = []
    for photo in glob.glob(pattern):
        trajectory_dir = os.path.dirname(os.path.dirname(photo))
        stem = os.path.splitext(os.path.basename(photo))[0]
        if not stem.isdigit():
            raise ValueError(f"Unexpected SceneNet photo name (want <frame number>.jpg): {photo}")
        rel = os.path.relpath(trajectory_dir, os.path.join(manual_dir, split))
        frame = Frame(split, rel.replace(os.sep, "/"), int(stem), trajectory_dir)
        for kind in ("depth", "instance"):
            if not os.path.isfile(frame.path(kind)):
                raise ValueError(
                    f"SceneNet frame {frame.image_id} has {photo} but is missing {frame.path(kind)}."
                )
        frames.append(frame)
    if not frames:
        raise ValueError(
            f"No SceneNet RGB-D frames for split {split!r} under {manual_dir!r}. Expected "
            f"files like {pattern} (see MANUAL_DOWNLOAD_INSTRUCTIONS)."
        )
    return sorted(frames, key=lambda f: (f.trajectory, f.index))


def _read_png(path: str, what: str) -> np.ndarray:
    array = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError(f"Could not read SceneNet {what} PNG: {path}")
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"SceneNet {what} PNG must be single-channel uint8/uint16: {path}. "
            f"Received: shape={array.shape}, dtype={array.dtype}"
        )
    return array


def convert_frame(photo: np.ndarray, depth_mm: np.ndarray, instance: np.ndarray) -> dict:
    """Converts upstream arrays (RGB uint8, uint16 mm ray depth, ids) to sample arrays."""
    height, width = depth_mm.shape
    if photo.shape != (height, width, 3) or instance.shape != (height, width):
        raise ValueError(
            f"SceneNet photo/instance must match depth size {(height, width)}. Received: "
            f"photo={photo.shape}, instance={instance.shape}"
        )
    intrinsics = scenenet_intrinsics(width, height)
    ray_metres = np.where(depth_mm > 0, depth_mm.astype(np.float64) / 1000.0, 0.0)
    depth = geometry.ray_distance_to_planar_depth(ray_metres, intrinsics)
    instance = instance.astype(np.int32)
    return {
        "image": np.ascontiguousarray(photo, dtype=np.uint8),
        "depth": depth,
        "normals": geometry.normals_from_depth(depth, intrinsics),
        "instance": instance,
        "contour": geometry.contours_from_instances(instance),
        "valid": geometry.valid_mask(depth),
        "intrinsics": intrinsics.astype(np.float32),
    }


def load_sample(frame: Frame) -> dict:
    """Reads and converts one frame into a full CONTRACTS.md sample."""
    bgr = cv2.imread(frame.path("photo"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"Could not read SceneNet photo: {frame.path('photo')}")
    sample = convert_frame(
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        _read_png(frame.path("depth"), "depth"),
        _read_png(frame.path("instance"), "instance"),
    )
    sample.update(
        scene_id=f"{frame.split}/{frame.trajectory}", image_id=frame.image_id, source=SOURCE
    )
    return sample


def iter_samples(
    manual_dir: str, split: str = "train", max_examples: int | None = None
) -> Iterator[dict]:
    """Converted samples of one split (the helper behind make_tfrecords --source=scenenet_rgbd)."""
    for frame in itertools.islice(find_frames(manual_dir, split), max_examples):
        yield load_sample(frame)
