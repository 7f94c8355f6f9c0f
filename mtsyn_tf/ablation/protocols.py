"""Every evaluation an ablation run gets, in one place (the same protocols for every run).

Per run: held-out synthetic metrics of the tasks it trained (``eval.json``), proxy
A-distance between held-out renders and real photos at every tap, Middlebury motorcycle
depth (raw and median-scaled), and frozen-feature linear probes conv1..conv5 on labelled
real photos that ship with scikit-image (``lfw_subset``: 100 faces, 100 non-faces), plus
VOC07 / ImageNet-style tfds sets when a prepared tfds data dir is given. The calls go to
``mtsyn_tf.evaluation``; nothing here re-implements a metric.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mtsyn_tf.evaluation.features import extract_features, square_resize

# PAD: the classifier's split of ~2×40 samples is itself a noise source (PAD moves in steps
# of 8/num_test); averaging over several seeded splits removes most of it.
PAD_SPLIT_SEEDS = (0, 1, 2, 3, 4)
RANDOM_INIT = "random_init"  # the reference row: protocols on an untrained model
# Few-shot: with all 160 training images every model (random init included) scores ≈99 %
# and the probe tells nothing apart; 10 faces + 10 non-faces per split leave room (≈91 %
# for random init). Mean over 20 seeded splits (split-to-split std ≈4 %, of the mean ≈1 %).
PROBE_SHOTS = 10
PROBE_SPLITS = 20
TFDS_VOC = ("voc/2007",)
OFFLINE_PROBE = "lfw_faces"
OFFLINE_PROBE_SOURCE = (
    "skimage.data.lfw_subset(): 200 grey 25×25 crops, the first 100 faces (LFW), the last 100 "
    "non-faces; binary labels, resized to the model input; logistic regression (C=1, liblinear dual) "
    f"on standardised pooled features, trained on {PROBE_SHOTS} faces + {PROBE_SHOTS} "
    f"non-faces and tested on the other 180, mean accuracy over {PROBE_SPLITS} seeded splits"
)
# What else ships offline and was not used: sklearn's load_digits (8×8 digits, not
# photos), load_sample_images (2 photos, no labels; already part of the real domain),
# skimage.data's single photos (no labels). Nothing else with labels is on disk.
OTHER_OFFLINE_DATA = (
    "sklearn.datasets.load_digits (8×8 digit glyphs, not photos) and unlabelled single "
    "photos in skimage.data / sklearn.datasets.load_sample_images; none used as a probe"
)


@dataclasses.dataclass
class EvalContext:
    """Inputs shared by every run's evaluation (prepared once per grid)."""

    synthetic_images: np.ndarray  # held-out renders [N, S, S, 3] float32
    real_images: np.ndarray  # crops of the embedded photos [M, S, S, 3]
    real_groups: np.ndarray  # photo id per crop (PAD splits by photo)
    probe_images: np.ndarray  # lfw_subset at [200, S, S, 3]
    probe_labels: np.ndarray  # 1 face, 0 non-face
    constant_depth_m: float  # the constant predictor's depth (held-out synthetic median)
    tfds_data_dir: str | None = None
    tfds_probes: tuple = ()
    tfds_probe_epochs: int = 10


def protocol_key(num_synthetic: int, tfds_data_dir=None, tfds_probes=()) -> dict:
    """What identifies the evaluation (a finished run is re-evaluated when it changes)."""
    return {
        "num_synthetic": num_synthetic,
        "pad_split_seeds": list(PAD_SPLIT_SEEDS),
        "probe": OFFLINE_PROBE,
        "probe_shots": PROBE_SHOTS,
        "probe_splits": PROBE_SPLITS,
        "tfds_data_dir": tfds_data_dir if tfds_probes else None,
        "tfds_probes": list(tfds_probes) if tfds_data_dir else [],
    }


def lfw_probe_data(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``skimage.data.lfw_subset()`` as RGB [200, S, S, 3] float32 and labels (1 = face)."""
    from skimage import data

    faces = np.asarray(data.lfw_subset(), dtype=np.float32)  # [200, 25, 25] in [0, 1]
    if faces.shape[0] != 200:
        raise ValueError(f"lfw_subset should hold 200 images. Received: {faces.shape}")
    rgb = np.repeat(faces[..., None], 3, axis=-1)
    images = np.stack([square_resize(x, image_size) for x in rgb])
    labels = np.concatenate([np.ones(100, np.int64), np.zeros(100, np.int64)])
    return images, labels


def make_context(
    synthetic_dir: str, image_size: int, num_synthetic: int = 64, **tfds
) -> EvalContext:
    """Loads the held-out renders, real crops and probe photos once."""
    from mtsyn_tf.data import pipeline
    from mtsyn_tf.data.real_domain import embedded_photos
    from mtsyn_tf.evaluation.offline import photo_crops

    ds = pipeline.make_eval_dataset(
        synthetic_dir, "test", batch_size=num_synthetic, image_size=image_size
    )
    batch = next(iter(ds.take(1)), None)
    if batch is None:
        raise ValueError(f"The 'test' split of {synthetic_dir!r} holds no records.")
    depth, valid = np.asarray(batch["depth"]), np.asarray(batch["valid"]) > 0
    real, groups = [], []
    for i, photo in enumerate(embedded_photos()):
        crops = photo_crops(photo["image"], image_size)
        real += crops
        groups += [i] * len(crops)
    probe_images, probe_labels = lfw_probe_data(image_size)
    return EvalContext(
        synthetic_images=np.asarray(batch["image"]),
        real_images=np.stack(real),
        real_groups=np.asarray(groups),
        probe_images=probe_images,
        probe_labels=probe_labels,
        constant_depth_m=float(np.median(depth[valid])),
        **tfds,
    )


def proxy_a_distances(model, grayscale: bool, ctx: EvalContext, taps) -> dict:
    """``({tap: PAD averaged over PAD_SPLIT_SEEDS}, {tap: per-split PADs})``."""
    from mtsyn_tf.evaluation.domain_gap import pooled_vectors, proxy_a_distance

    syn = extract_features(model, ctx.synthetic_images, taps, grayscale=grayscale)
    real = extract_features(model, ctx.real_images, taps, grayscale=grayscale)
    pads, splits = {}, {}
    for tap in taps:
        s, r = pooled_vectors(syn[tap]), pooled_vectors(real[tap])
        values = [
            proxy_a_distance(s, r, real_groups=ctx.real_groups, seed=seed)["pad"]
            for seed in PAD_SPLIT_SEEDS
        ]
        pads[tap], splits[tap] = float(np.mean(values)), values
    return pads, splits


def offline_probe(model, grayscale: bool, ctx: EvalContext, taps) -> dict:
    """``{tap: accuracy %}``: cross-validated logistic regression on pooled frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mtsyn_tf.evaluation.domain_gap import pooled_vectors

    feats = extract_features(model, ctx.probe_images, taps, grayscale=grayscale)
    splits = StratifiedShuffleSplit(PROBE_SPLITS, train_size=2 * PROBE_SHOTS, random_state=0)
    accuracy = {}
    for tap in taps:
        # Dual liblinear: 20 samples × ~9k dims, the dual problem is 20-dimensional.
        clf = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0, solver="liblinear", dual=True, max_iter=5000),
        )
        scores = cross_val_score(clf, pooled_vectors(feats[tap]), ctx.probe_labels, cv=splits)
        accuracy[tap] = 100.0 * float(np.mean(scores))
    return accuracy


def tfds_probes(model, grayscale: bool, ctx: EvalContext, taps) -> dict:
    """``{dataset: {tap: score}}`` on prepared tfds sets (never downloads; see tfds_sources)."""
    from mtsyn_tf.evaluation.linear_probe import linear_probe_tfds
    from mtsyn_tf.evaluation.voc_classification import voc07_svm

    results = {}
    for name in ctx.tfds_probes:
        if name in TFDS_VOC:  # multi-label: per-class linear SVMs, 11-point mAP
            results[name] = {
                t: voc07_svm(model, name, ctx.tfds_data_dir, tap=t, grayscale=grayscale)["map"]
                for t in taps
            }
        else:  # single-label: the linear-probe protocol, top-1 %
            r = linear_probe_tfds(
                model, name, ctx.tfds_data_dir, epochs=ctx.tfds_probe_epochs,
                grayscale=grayscale, taps=taps,
            )  # fmt: skip
            results[name] = dict(r["top1"])
    return results


def constant_depth_baseline(ctx: EvalContext) -> dict:
    """Motorcycle scores of a predictor that outputs ``ctx.constant_depth_m`` everywhere."""
    from mtsyn_tf.evaluation.motorcycle import centre_square, motorcycle_ground_truth, score_depth

    gt = centre_square(motorcycle_ground_truth()["depth"])
    scores = score_depth(np.full(gt.shape, ctx.constant_depth_m, np.float64), gt)
    return {
        "raw": scores["raw"],
        "median_scaled": scores["median_scaled"],
        "depth_m": ctx.constant_depth_m,
    }


def evaluate_model(model, grayscale: bool, tasks, ctx: EvalContext) -> dict:
    """Every protocol except the held-out synthetic metrics (those come from training)."""
    from mtsyn_tf.evaluation.linear_probe import PROBE_TAPS
    from mtsyn_tf.evaluation.motorcycle import motorcycle_depth_metrics
    from mtsyn_tf.models.presets import ALEXNET_TAPS, VGG16_TAPS

    arch = model.preset["arch"]
    gap_taps = ALEXNET_TAPS if arch == "alexnet" else VGG16_TAPS
    probe_taps = PROBE_TAPS if arch == "alexnet" else VGG16_TAPS
    pads, pad_splits = proxy_a_distances(model, grayscale, ctx, gap_taps)
    result = {
        "pad_samples": {"synthetic": len(ctx.synthetic_images), "real": len(ctx.real_images)},
        "pad": pads,
        "pad_splits": pad_splits,
        "probe": {OFFLINE_PROBE: offline_probe(model, grayscale, ctx, probe_taps)},
    }
    if ctx.tfds_data_dir and ctx.tfds_probes:
        result["probe"].update(tfds_probes(model, grayscale, ctx, probe_taps))
    if "depth" in tasks:
        m = motorcycle_depth_metrics(model, grayscale)
        result["motorcycle"] = {k: m[k] for k in ("raw", "median_scaled", "median_scale_factor")}
    return result


def evaluate_run(run_dir: str, ctx: EvalContext) -> dict:
    """A finished training run's evaluation (its newest checkpoint)."""
    from mtsyn_tf.evaluation.loading import load_run_model
    from mtsyn_tf.evaluation.multitask_summary import run_metrics, run_tasks

    tasks = run_tasks(run_dir)
    model, info = load_run_model(run_dir)
    return {
        "tasks": list(tasks),
        "synthetic": run_metrics(run_dir, tasks),
        **evaluate_model(model, info["grayscale"], tasks, ctx),
    }


def evaluate_random_init(cfg, ctx: EvalContext) -> dict:
    """The same protocols for a freshly initialised model of the run's preset and seed."""
    import keras

    from mtsyn_tf.models import build_multitask_model, get_preset

    keras.utils.set_random_seed(cfg.seed)
    model = build_multitask_model(get_preset(cfg.preset, **cfg.preset_overrides))
    return {"tasks": [], **evaluate_model(model, cfg.trainer.grayscale, ("depth",), ctx)}
