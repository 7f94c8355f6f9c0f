"""Qualitative figures of the paper: conv1 filters, conv5 nearest neighbours, predictions.

Every function returns the numbers it drew (so tests and reports can check them) and
writes one PNG atomically.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf import visualize
from mtsyn_tf.evaluation.features import extract_features
from mtsyn_tf.evaluation.predict import predict_numpy
from mtsyn_tf.evaluation.sheets import grid_sheet
from mtsyn_tf.io_utils import write_png

PREDICTION_COLUMNS = (
    "input", "depth pred", "depth gt", "normals pred", "normals gt", "contour pred", "contour gt"
)  # fmt: skip
REAL_COLUMNS = ("input", "depth pred", "normals pred", "contour pred")


def first_conv_kernel(model) -> np.ndarray:
    """The first convolution's kernel [kh, kw, 3, C] (conv1 for AlexNet, conv1_1 for VGG16)."""
    for weight in model.backbone.weights:
        if len(weight.shape) == 4 and weight.shape[2] == 3:
            return np.asarray(weight.numpy())
    raise ValueError(f"No [kh, kw, 3, C] kernel in the backbone of {type(model).__name__}.")


def filter_tiles(kernel) -> list[np.ndarray]:
    """Each filter min–max scaled to [0, 1] on its own (as in AlexNet's filter figures)."""
    kernel = np.asarray(kernel, dtype=np.float64)
    tiles = []
    for c in range(kernel.shape[-1]):
        f = kernel[..., c]
        lo, hi = f.min(), f.max()
        tiles.append((f - lo) / (hi - lo) if hi > lo else np.zeros_like(f))
    return tiles


def conv1_filter_grid(model, path: str, columns: int = 16, tile: int = 44) -> dict:
    """Writes the first-layer filters as a grid; returns ``{"path", "num_filters"}``."""
    tiles = filter_tiles(first_conv_kernel(model))
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    write_png(path, grid_sheet(rows, tile=tile))
    return {"path": path, "num_filters": len(tiles)}


def flattened_unit(features) -> np.ndarray:
    """[N, ...] → [N, D] float64 rows of unit L2 norm (zero rows stay zero)."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return f / np.maximum(norms, 1e-12)


def cosine_neighbours(queries, database, k: int, exclude_self: bool) -> np.ndarray:
    """Indices [Q, k] of the most cosine-similar database rows (ties: lower index first).

    ``exclude_self``: query i is database row i (retrieval within one set), never returned.
    """
    sims = flattened_unit(queries) @ flattened_unit(database).T
    if exclude_self:
        if sims.shape[0] > sims.shape[1]:
            raise ValueError(f"exclude_self needs queries ⊆ database. Received: {sims.shape}")
        sims[np.arange(len(sims)), np.arange(len(sims))] = -np.inf
    if k > sims.shape[1] - int(exclude_self):
        raise ValueError(f"k={k} exceeds the database size {sims.shape[1] - int(exclude_self)}.")
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def nearest_neighbour_sheet(
    models: dict,
    images,
    path: str,
    num_queries: int = 6,
    k: int = 4,
    tap: str = "conv5",
) -> dict:
    """Retrieval on flattened ``tap`` features (cosine), one column block per model.

    Args:
        models: ``{name: (model, grayscale)}``, e.g. random init / no-DA / DA.
        images: float32 [N, S, S, 3]; the first ``num_queries`` are queries, retrieval runs
            over all N (the query itself excluded).

    Returns:
        ``{"path", "neighbours": {name: [[index, ...] per query]}}``.
    """
    images = np.asarray(images, dtype=np.float32)
    num_queries = min(num_queries, len(images))
    neighbours, rows = {}, [[images[q]] for q in range(num_queries)]
    titles = ["query"]
    for name, (model, grayscale) in models.items():
        feats = extract_features(model, images, [tap], grayscale=grayscale)[tap]
        idx = cosine_neighbours(feats[:num_queries], feats, k, exclude_self=True)
        neighbours[name] = idx.tolist()
        for q in range(num_queries):
            rows[q] += [images[i] for i in idx[q]]
        titles += [f"{name} #{j + 1}" for j in range(k)]
    write_png(path, grid_sheet(rows, tile=96, column_titles=titles))
    return {"path": path, "neighbours": neighbours, "tap": tap, "similarity": "cosine"}


def _depth_pair(pred, gt, valid):
    """Colourises pred and gt on gt's depth range, so colours compare across the row."""
    depth_range = visualize.inverse_depth_range(gt, valid)
    return (
        visualize.colorize_depth(pred, depth_range=depth_range),
        visualize.colorize_depth(gt, valid=valid, depth_range=depth_range),
    )


def prediction_grid(model, batch: dict, path: str, grayscale: bool = False) -> dict:
    """input | depth pred | depth gt | normals pred | normals gt | contour pred | contour gt.

    ``batch`` holds numpy ``image`` [N, S, S, 3] and the targets of ``make_eval_dataset``
    (``depth`` [N, S, S, 1], ``normals`` [N, S, S, 3], ``contour`` and ``valid`` [N, S, S, 1]).
    Tasks the model lacks are left blank.
    """
    images = np.asarray(batch["image"], dtype=np.float32)
    pred = predict_numpy(model, images, grayscale)
    rows = []
    for i in range(len(images)):
        valid = np.asarray(batch["valid"][i, ..., 0]) > 0.5
        row = [images[i]] + [None] * 6
        if "depth" in pred:
            row[1], row[2] = _depth_pair(pred["depth"][i, ..., 0], batch["depth"][i, ..., 0], valid)
        if "normals" in pred:
            row[3] = visualize.colorize_normals(pred["normals"][i])
            row[4] = visualize.colorize_normals(batch["normals"][i] * valid[..., None])
        if "contour" in pred:
            row[5] = visualize.colorize_contour(pred["contour"][i, ..., 0])
            row[6] = visualize.colorize_contour(batch["contour"][i, ..., 0])
        rows.append(row)
    write_png(path, grid_sheet(rows, tile=128, column_titles=PREDICTION_COLUMNS))
    return {"path": path, "num_images": len(images)}


def real_prediction_sheet(model, images, path: str, names=None, grayscale: bool = False) -> dict:
    """input | depth | normals | contour predictions on real photos (no ground truth)."""
    images = np.asarray(images, dtype=np.float32)
    pred = predict_numpy(model, images, grayscale)
    rows = []
    for i in range(len(images)):
        row = [images[i], None, None, None]
        if "depth" in pred:
            row[1] = visualize.colorize_depth(pred["depth"][i, ..., 0])
        if "normals" in pred:
            row[2] = visualize.colorize_normals(pred["normals"][i])
        if "contour" in pred:
            row[3] = visualize.colorize_contour(pred["contour"][i, ..., 0])
        rows.append(row)
    write_png(
        path,
        grid_sheet(rows, tile=128, column_titles=REAL_COLUMNS, row_titles=names),
    )
    return {"path": path, "num_images": len(images)}
