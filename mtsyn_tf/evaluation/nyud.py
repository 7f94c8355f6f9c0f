"""NYU Depth v2 labeled set (1449 images) and its standard 795 / 654 split, read offline.

Files (both from the NYU site, prepared by the user):

* ``nyu_depth_v2_labeled.mat``: MATLAB v7.3 = HDF5. h5py sees MATLAB's column-major arrays
  transposed: ``images`` uint8 [N, 3, W, H] and ``depths`` float [N, W, H] (metres), so
  image i is ``images[i].transpose(2, 1, 0)`` → [H, W, 3] and depth ``depths[i].T``.
* ``splits.mat`` (MATLAB v5, scipy): ``trainNdxs`` (795) and ``testNdxs`` (654), 1-based.

Normals ground truth: the paper reports on Eigen & Fergus' normals, which are not in
these files. We compute normals from the provided (inpainted) depth with
``mtsyn_tf.geometry.normals_from_depth`` and NYU's standard colour-camera intrinsics
(fx 518.86, fy 519.47, cx 325.58, cy 253.74, for 640×480), so our numbers are comparable
between our runs but not digit-for-digit with the paper's table.
"""

from __future__ import annotations

import os

import numpy as np

from mtsyn_tf import geometry

NYUD_INTRINSICS = (518.86, 519.47, 325.58, 253.74)
SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}


def _open_labeled(mat_path: str):
    import h5py

    if not os.path.isfile(mat_path):
        raise ValueError(
            "NYU Depth v2 labeled file not found: expected nyu_depth_v2_labeled.mat (MATLAB "
            f"v7.3, from the NYU Depth v2 site). Received: {mat_path}"
        )
    try:
        f = h5py.File(mat_path, "r")
    except OSError as err:
        raise ValueError(
            f"Not an HDF5 / MATLAB v7.3 file ({err}); expected nyu_depth_v2_labeled.mat. "
            f"Received: {mat_path}"
        ) from err
    missing = [k for k in ("images", "depths") if k not in f]
    if missing:
        f.close()
        raise ValueError(f"{mat_path} lacks datasets {missing}; found {sorted(f.keys())}.")
    images, depths = f["images"], f["depths"]
    if images.ndim != 4 or images.shape[1] != 3 or depths.shape != (
        images.shape[0], images.shape[2], images.shape[3]
    ):  # fmt: skip
        shapes = (images.shape, depths.shape)
        f.close()
        raise ValueError(
            "Expected images [N, 3, W, H] and depths [N, W, H] (MATLAB order as h5py reads it). "
            f"Received: {shapes} in {mat_path}"
        )
    return f


def split_indices(splits_path: str, split: str, num_images: int) -> np.ndarray:
    """0-based indices of ``split`` ("train" or "test") from splits.mat."""
    from scipy.io import loadmat

    if split not in SPLIT_KEYS:
        raise ValueError(f"split must be one of {sorted(SPLIT_KEYS)}. Received: split={split!r}")
    if not os.path.isfile(splits_path):
        raise ValueError(f"splits.mat not found (trainNdxs/testNdxs). Received: {splits_path}")
    try:
        mat = loadmat(splits_path)
    except (ValueError, OSError, NotImplementedError) as err:
        raise ValueError(f"Unreadable splits.mat ({err}). Received: {splits_path}") from err
    key = SPLIT_KEYS[split]
    if key not in mat:
        raise ValueError(
            f"{splits_path} has no {key!r}. Found: {sorted(k for k in mat if not k.startswith('__'))}"
        )
    idx = np.asarray(mat[key]).reshape(-1).astype(np.int64) - 1
    if idx.size == 0 or idx.min() < 0 or idx.max() >= num_images:
        raise ValueError(
            f"{key} must hold 1-based indices in 1..{num_images}. Received: range "
            f"{idx.min() + 1 if idx.size else None}..{idx.max() + 1 if idx.size else None}"
        )
    return idx


def iter_nyud(
    mat_path: str,
    splits_path: str,
    split: str,
    limit: int | None = None,
    intrinsics=NYUD_INTRINSICS,
):
    """Yields ``{"image" uint8 [H,W,3], "depth" [H,W] m, "normals" [H,W,3], "index"}``."""
    with _open_labeled(mat_path) as f:
        images, depths = f["images"], f["depths"]
        idx = split_indices(splits_path, split, images.shape[0])
        for i in idx[:limit]:
            depth = np.asarray(depths[i], dtype=np.float32).T
            yield {
                "image": np.ascontiguousarray(np.asarray(images[i]).transpose(2, 1, 0)),
                "depth": depth,
                "normals": geometry.normals_from_depth(depth, np.asarray(intrinsics)),
                "index": int(i),
            }
