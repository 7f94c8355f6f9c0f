"""Batched physical predictions (depth metres, unit normals, contour probability) as numpy."""

from __future__ import annotations

import numpy as np

from mtsyn_tf.evaluation.loading import prepare_images


def predict_numpy(model, images, grayscale: bool = False, batch_size: int = 8) -> dict:
    """``model.predict_physical`` over float32 [N, S, S, 3] images → ``{task: [N, S, S, C]}``."""
    x = prepare_images(images, grayscale)
    size = model.image_size
    if x.shape[1:3] != (size, size):
        raise ValueError(f"The model takes {size}×{size} images. Received shape: {x.shape}")
    parts: dict[str, list] = {}
    for start in range(0, len(x), batch_size):
        out = model.predict_physical(x[start : start + batch_size])
        for task, value in out.items():
            parts.setdefault(task, []).append(np.asarray(value))
    return {task: np.concatenate(v) for task, v in parts.items()}
