"""Region proposals for Fast R-CNN: the released Selective Search boxes, or a test stand-in.

Standard practice (Girshick 2015, and the paper's Table 1 detection columns) trains and
tests on precomputed Selective Search proposals. Fast R-CNN's release ships them as
``selective_search_data/voc_<year>_<split>.mat``: MATLAB files holding ``images`` (a cell
array of image ids such as ``'000005'``) and ``boxes`` (a cell array with, per image, an
``[N, 4]`` array of ``y1 x1 y2 x2`` in 1-based inclusive pixels — the devkit coordinates
that ``mtsyn_tf.metrics.detection`` and tfds' VOC ``bbox`` × image size use too).

``gt_jitter`` proposals (jittered ground-truth boxes plus random boxes) exist only so that
tests and smoke runs need no downloaded files; on a test split they read the test
annotations, so numbers computed with them are *not* detection results.
"""

from __future__ import annotations

import os

import numpy as np

GT_JITTER = "gt_jitter"
# Selective Search files read for each (tfds config, split part).
SS_FILES = {
    ("2007", "train"): "voc_2007_trainval.mat",
    ("2007", "validation"): "voc_2007_trainval.mat",
    ("2007", "test"): "voc_2007_test.mat",
    ("2012", "train"): "voc_2012_trainval.mat",
    ("2012", "validation"): "voc_2012_trainval.mat",
}


def selective_search_files(year: str, split: str) -> list[str]:
    """The release's ``.mat`` names that cover ``split`` (``"train+validation"`` etc.)."""
    names = []
    for part in split.split("+"):
        key = (year, part.strip())
        if key not in SS_FILES:
            raise ValueError(
                f"No Selective Search file is known for VOC {year} split {part!r}. "
                f"Expected one of {sorted(SS_FILES)}. Received: year={year!r}, split={split!r}"
            )
        if SS_FILES[key] not in names:
            names.append(SS_FILES[key])
    return names


def selective_search_paths(directory: str, year: str, split: str) -> list[str]:
    """Paths of the ``.mat`` files covering ``split``; a ValueError naming any missing."""
    paths = [os.path.join(directory, n) for n in selective_search_files(year, split)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(
            f"Selective Search proposals not found: {missing}. Expected the files "
            f"{[os.path.basename(p) for p in paths]} of Fast R-CNN's selective_search_data "
            f"release in --proposals={directory!r}, or --proposals={GT_JITTER} for smoke tests."
        )
    return paths


def load_selective_search(directory: str, year: str, split: str) -> dict:
    """``{image id: [N, 4] float boxes}`` from the release's ``.mat`` files in ``directory``."""
    import scipy.io

    table = {}
    for path in selective_search_paths(directory, year, split):
        mat = scipy.io.loadmat(path)
        if "boxes" not in mat or "images" not in mat:
            raise ValueError(
                f"{path} must hold the cell arrays 'boxes' and 'images'. Received keys: "
                f"{sorted(k for k in mat if not k.startswith('__'))}"
            )
        ids, boxes = np.ravel(mat["images"]), np.ravel(mat["boxes"])
        if len(ids) != len(boxes):
            raise ValueError(f"{path}: {len(ids)} images but {len(boxes)} box arrays.")
        for image_id, b in zip(ids, boxes):
            b = np.asarray(b, np.float64).reshape(-1, 4)
            _, first = np.unique(b, axis=0, return_index=True)  # drop duplicates, keep order
            table[str(np.ravel(image_id)[0]).strip()] = b[np.sort(first)]
    return table


def image_id(filename: str) -> str:
    """tfds' ``image/filename`` (``000005.jpg``) → the release's image id (``000005``)."""
    return os.path.splitext(os.path.basename(filename))[0]


def gt_jitter_proposals(gt_boxes, height: int, width: int, rng, per_box: int = 8,
                        num_random: int = 32) -> np.ndarray:  # fmt: skip
    """Test/smoke stand-in: each GT box shifted/scaled by up to ±20 %, plus random boxes."""
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    out = []
    for y1, x1, y2, x2 in gt_boxes:
        h, w = y2 - y1 + 1, x2 - x1 + 1
        d = rng.uniform(-0.2, 0.2, (per_box, 4)) * [h, w, h, w]
        out.append(np.array([y1, x1, y2, x2]) + d)
    corners = rng.uniform(1, [height, width, height, width], (num_random, 4))
    out.append(np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]),
                               np.maximum(corners[:, :2], corners[:, 2:])], axis=1))  # fmt: skip
    return clip_boxes(np.concatenate(out), height, width)


def clip_boxes(boxes, height: float, width: float) -> np.ndarray:
    """Clips 1-based inclusive boxes to the image and makes every side ≥ 1 pixel."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    y1 = np.clip(boxes[:, 0], 1, height)
    x1 = np.clip(boxes[:, 1], 1, width)
    y2 = np.clip(np.maximum(boxes[:, 2], y1), 1, height)
    x2 = np.clip(np.maximum(boxes[:, 3], x1), 1, width)
    return np.stack([y1, x1, y2, x2], axis=1)
