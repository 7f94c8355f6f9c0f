"""NYUD v2 surface normals: fine-tune on the 795 training images, score the 654 test images.

Protocol (paper §4.3, VGG16 variant): the whole network (base + normals head) is
fine-tuned with the training normals loss (``−mean cos``, valid pixels only), Adam; other
heads are untouched. Inputs are the central square crop (480×480) resized to the model
size; training adds random horizontal flips (the normals' x component flips with them).
Evaluation predicts on the same centre crop, resizes the normals back to 480×480
(bilinear, renormalised) and pools ``normal_metrics`` over every valid pixel of the test
split (mean / median angle in degrees, % of pixels within 11.25° / 22.5° / 30°).
See ``mtsyn_tf.evaluation.nyud`` for the ground-truth normals we use.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from mtsyn_tf.evaluation import nyud
from mtsyn_tf.evaluation.features import square_resize
from mtsyn_tf.evaluation.loading import prepare_images
from mtsyn_tf.evaluation.motorcycle import centre_square
from mtsyn_tf.losses import normals_loss_per_example
from mtsyn_tf.metrics import NormalAccumulator


def to_model_view(sample: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image float32 [S,S,3], normals float32 [S,S,3]) on the central square (0 = invalid)."""
    image = square_resize(centre_square(sample["image"]), size)
    normals = centre_square(sample["normals"]).astype(np.float32)
    normals = cv2.resize(normals, (size, size), interpolation=cv2.INTER_NEAREST)
    return image, normals


def _require_normals(model):
    if "normals" not in model.tasks:
        raise ValueError(f"The model has no normals head. Received tasks: {model.tasks}")


def finetune_normals(
    model, images, normals, steps: int = 1000, batch_size: int = 8, learning_rate: float = 1e-4,
    grayscale: bool = False, train_base: bool = True, seed: int = 0,
) -> list[float]:  # fmt: skip
    """Fine-tunes the normals head (and the base) in place; returns the loss per step."""
    _require_normals(model)
    images = prepare_images(images, grayscale)
    normals = np.asarray(normals, dtype=np.float32)
    if normals.shape != images.shape:
        raise ValueError(
            f"images and normals shapes differ. Received: {images.shape} vs {normals.shape}"
        )
    variables = list(model.heads["normals"].trainable_variables)
    if train_base:
        variables += list(model.backbone.trainable_variables)
    optimizer = tf.keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(x, n):
        valid = tf.cast(tf.reduce_any(tf.not_equal(n, 0.0), axis=-1, keepdims=True), tf.float32)
        with tf.GradientTape() as tape:
            _, pred = model.forward(x, training=True)
            loss = tf.reduce_mean(normals_loss_per_example(pred["normals"], n, valid))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(seed)
    flip_sign = np.array([-1.0, 1.0, 1.0], np.float32)
    losses = []
    for _ in range(steps):
        idx = rng.choice(len(images), min(batch_size, len(images)), replace=False)
        x, n = images[idx].copy(), normals[idx].copy()
        flip = rng.random(len(idx)) < 0.5
        x[flip] = x[flip][:, :, ::-1]
        n[flip] = n[flip][:, :, ::-1] * flip_sign
        losses.append(float(step(tf.constant(x), tf.constant(n))))
    return losses


def evaluate_normals(model, samples, grayscale: bool = False, batch_size: int = 4) -> dict:
    """Pooled angular-error metrics over ``samples`` (dicts with image, normals) at full crop size."""
    _require_normals(model)
    acc = NormalAccumulator()
    size = model.image_size
    batch = []

    def flush():
        x = prepare_images(
            np.stack([square_resize(centre_square(s["image"]), size) for s in batch]), grayscale
        )
        pred = np.asarray(model.predict_physical(x)["normals"])
        for p, s in zip(pred, batch):
            gt = centre_square(s["normals"])
            p = cv2.resize(p, gt.shape[1::-1], interpolation=cv2.INTER_LINEAR)
            p /= np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
            acc.update(p, gt)
        batch.clear()

    count = 0
    for sample in samples:
        batch.append(sample)
        count += 1
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if count == 0:
        raise ValueError("No test samples: nothing to evaluate.")
    return {**acc.result(), "num_images": count}


def nyud_normals(
    model, mat_path: str, splits_path: str, steps: int = 1000, batch_size: int = 8,
    learning_rate: float = 1e-4, grayscale: bool = False, max_train: int | None = None,
    max_test: int | None = None, intrinsics=nyud.NYUD_INTRINSICS,
) -> dict:  # fmt: skip
    """The full protocol; returns test metrics, the protocol description and the loss curve."""
    _require_normals(model)
    views = [to_model_view(s, model.image_size) for s in nyud.iter_nyud(mat_path, splits_path, "train", max_train, intrinsics)]  # fmt: skip
    images = np.stack([v[0] for v in views])
    normals = np.stack([v[1] for v in views])
    losses = finetune_normals(model, images, normals, steps, batch_size, learning_rate, grayscale)
    metrics = evaluate_normals(
        model, nyud.iter_nyud(mat_path, splits_path, "test", max_test, intrinsics), grayscale
    )
    return {
        "metrics": metrics,
        "num_train": len(images),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "ground_truth": "normals_from_depth(NYU depth, fx=518.86 fy=519.47 cx=325.58 cy=253.74)",
        "evaluation": "central 480x480 square, full resolution, pooled over valid pixels",
    }
