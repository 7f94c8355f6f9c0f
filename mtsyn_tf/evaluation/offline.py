"""The evaluation that needs no dataset download: synthetic shards + embedded photos.

Library of the ``qualitative``, ``domain_gap`` and ``motorcycle`` evaluators
(``mtsyn_tf.evaluation.evaluators``; ``all_offline`` runs the three, and it is what the
laptop demo runs after a short training): the models compared (the run, optional other
runs, always a random initialisation of the same preset), the held-out synthetic batch,
the embedded photos' crops, and one report section per part.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from mtsyn_tf import visualize
from mtsyn_tf.data import pipeline
from mtsyn_tf.data.real_domain import embedded_photos
from mtsyn_tf.evaluation import qualitative
from mtsyn_tf.evaluation.domain_gap import domain_gap_table, pca_2d, pooled_vectors
from mtsyn_tf.evaluation.features import extract_features, square_resize
from mtsyn_tf.evaluation.loading import load_run_model
from mtsyn_tf.evaluation.motorcycle import motorcycle_depth_metrics
from mtsyn_tf.evaluation.report import Section, Table
from mtsyn_tf.evaluation.scatter import scatter_png
from mtsyn_tf.evaluation.sheets import grid_sheet
from mtsyn_tf.io_utils import write_png
from mtsyn_tf.models import build_multitask_model

# Square crops per photo for the domain gap: (centre y, centre x, side) as image fractions.
PHOTO_CROPS = ((0.5, 0.5, 1.0), (0.4, 0.4, 0.7), (0.6, 0.6, 0.7), (0.4, 0.6, 0.7))
GAP_TAPS = {
    "alexnet": ("conv1", "conv3", "conv5", "fc7"),
    "vgg16": ("conv1_2", "conv3_3", "conv5_3"),
}
DEPTH_TABLE_METRICS = ("abs_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3")


def photo_crops(image, size: int) -> list[np.ndarray]:
    """``PHOTO_CROPS`` of one photo (fractions of the short side), each resized to size²."""
    h, w = image.shape[:2]
    short = min(h, w)
    crops = []
    for cy, cx, frac in PHOTO_CROPS:
        side = int(short * frac)
        y0 = int(np.clip(cy * h - side / 2, 0, h - side))
        x0 = int(np.clip(cx * w - side / 2, 0, w - side))
        crops.append(square_resize(image[y0 : y0 + side, x0 : x0 + side], size))
    return crops


def synthetic_batch(synthetic_dir: str, split: str, num: int, image_size: int) -> dict:
    """The first ``num`` held-out synthetic samples as numpy (centre crop, no augmentation)."""
    ds = pipeline.make_eval_dataset(synthetic_dir, split, batch_size=num, image_size=image_size)
    batch = next(iter(ds.take(1)), None)
    if batch is None:
        raise ValueError(f"Split {split!r} of {synthetic_dir!r} holds no records.")
    return {k: np.asarray(v) for k, v in batch.items()}


def compared_models(target, compare_workdirs, seed: int) -> dict:
    """``{name: (model, grayscale)}``: the evaluated run, the compared runs, a random init.

    ``target`` is an ``EvalRun``; ``compare_workdirs`` a list of workdirs (named by their
    basename) or ``{name: workdir}``; they must share the run's architecture. The random
    initialisation of the run's preset (seeded with ``seed``) is always the last entry.
    """
    model, info = target.model, target.info
    models = {target.name: (model, info["grayscale"])}
    if isinstance(compare_workdirs, dict):
        items = list(compare_workdirs.items())
    else:
        items = [(os.path.basename(os.path.normpath(w)), w) for w in (compare_workdirs or ())]
    for other_name, other_dir in items:
        other, other_info = load_run_model(other_dir)
        if other.preset["arch"] != model.preset["arch"]:
            raise ValueError(
                f"Compared runs must share an architecture. Received: {target.name} is "
                f"{model.preset['arch']}, {other_dir} is {other.preset['arch']}"
            )
        if other_name in models:
            raise ValueError(f"Two runs share the name {other_name!r}; pass a dict of names.")
        models[other_name] = (other, other_info["grayscale"])
    keras.utils.set_random_seed(seed)
    models["random init"] = (build_multitask_model(info["preset"]), info["grayscale"])
    return models


def real_photo_crops(size: int) -> dict:
    """The embedded photos, their ``PHOTO_CROPS`` (images + photo index) and centre crops."""
    photos = embedded_photos()
    images, groups = [], []
    for i, photo in enumerate(photos):
        crops = photo_crops(photo["image"], size)
        images += crops
        groups += [i] * len(crops)
    images = np.stack(images)
    return {"photos": photos, "images": images, "groups": groups,
            "centre_crops": images[:: len(PHOTO_CROPS)]}  # fmt: skip


def domain_gap_taps(model) -> tuple[tuple[str, ...], str]:
    """(taps scored, tap of the PCA scatter: the preset's DA tap if scored, else the last)."""
    taps = GAP_TAPS[model.preset["arch"]]
    return taps, model.preset["da_tap"] if model.preset["da_tap"] in taps else taps[-1]


def gap_section(models, syn_images, real_images, real_groups, taps, da_tap, tmp, seed):
    table = domain_gap_table(models, syn_images, real_images, taps, real_groups, seed)
    rows = [[name] + [table[name][t]["pad"] for t in taps] for name in table]
    any_entry = next(iter(next(iter(table.values())).values()))
    images = []
    for i, (name, (model, grayscale)) in enumerate(models.items()):
        feats = [
            pooled_vectors(extract_features(model, x, [da_tap], grayscale=grayscale)[da_tap])
            for x in (syn_images, real_images)
        ]
        xy = pca_2d(np.concatenate(feats))
        rel = f"domain_gap/pca_{da_tap}_{i}.png"
        scatter_png(
            {"synthetic": xy[: len(feats[0])], "real": xy[len(feats[0]) :]},
            os.path.join(tmp, rel), title=f"{name}: PCA of {da_tap}",
        )  # fmt: skip
        images.append((f"{name}: 2-D PCA of pooled {da_tap} features", rel))
    section = Section(
        "Domain gap: synthetic vs real features",
        text=(
            "Proxy A-distance 2(1-2e) of a logistic-regression domain classifier trained on half "
            f"of {any_entry['num_train'] + any_entry['num_test']} balanced samples (real photos "
            "split by photo), held-out error e on the other half. 0 = indistinguishable, "
            "2 = separable. Features pooled to the linear-probe grid (~9k dims)."
        ),
        tables=[Table("Proxy A-distance per tap (lower = smaller gap)", ["model", *taps], rows)],
        images=images,
    )
    return section, table


def motorcycle_section(models, tmp):
    results, rows, sheet_rows = {}, [], []
    for name, (model, grayscale) in models.items():
        if "depth" not in model.tasks:
            continue
        r = motorcycle_depth_metrics(model, grayscale)
        pred, gt = r.pop("prediction"), r.pop("ground_truth")
        results[name] = r
        for mode in ("raw", "median_scaled"):
            rows.append([name, mode] + [r[mode][m] for m in DEPTH_TABLE_METRICS])
        rng = (max(r["gt_depth_range_m"][0], 1e-3), r["gt_depth_range_m"][1])
        sheet_rows.append(
            [visualize.colorize_depth(pred * r["median_scale_factor"], depth_range=rng),
             visualize.colorize_depth(gt, depth_range=rng)]
        )  # fmt: skip
    if not results:
        return None, {}
    from mtsyn_tf.evaluation.motorcycle import centre_square, motorcycle_ground_truth

    photo = square_resize(centre_square(motorcycle_ground_truth()["image"]), 128)
    rel = "motorcycle/depth.png"
    write_png(
        os.path.join(tmp, rel),
        grid_sheet([[photo] + row for row in sheet_rows], tile=160,
                   column_titles=["photo", "pred (median-scaled)", "ground truth"],
                   row_titles=list(results)),
    )  # fmt: skip
    section = Section(
        "Metric depth on a real photo (Middlebury Motorcycle)",
        text=(
            "Ground truth Z = baseline*f/(d+doffs) from skimage's disparity and calibration "
            "(f=994.978 px, baseline=193.001 mm, doffs=31.086 px), centre 500x500 square, scored "
            "at full resolution on pixels with known disparity. 'raw' = metric prediction, "
            "'median_scaled' = prediction x median(gt)/median(pred)."
        ),
        tables=[Table("Depth errors", ["model", "scaling", *DEPTH_TABLE_METRICS], rows)],
        images=[("Motorcycle depth (pred, median-scaled | ground truth)", rel)],
    )
    return section, results


def qualitative_section(models, name, info, batch, photos, centre_crops, split, synthetic_dir, tmp):
    model, grayscale = models[name]
    arch = model.preset["arch"]
    rel = "qualitative/conv1_filters.png"
    filters = qualitative.conv1_filter_grid(model, os.path.join(tmp, rel))
    rel_pred = "qualitative/synthetic_predictions.png"
    qualitative.prediction_grid(
        model, {k: v[:6] for k, v in batch.items()}, os.path.join(tmp, rel_pred), grayscale
    )
    rel_real = "qualitative/real_predictions.png"
    qualitative.real_prediction_sheet(
        model, centre_crops, os.path.join(tmp, rel_real),
        names=[p["image_id"] for p in photos], grayscale=grayscale,
    )  # fmt: skip
    rel_nn = "qualitative/conv5_neighbours.png"
    nn_tap = "conv5" if arch == "alexnet" else "conv5_3"
    database = np.concatenate([centre_crops, batch["image"]])
    neighbours = qualitative.nearest_neighbour_sheet(
        models, database, os.path.join(tmp, rel_nn), num_queries=6, k=4, tap=nn_tap
    )
    section = Section(
        "Qualitative",
        text=(
            f"Run {name} ({info['checkpoint']}); held-out synthetic split {split!r} of "
            f"{synthetic_dir}; real photos embedded in scikit-image/scikit-learn. "
            f"Nearest neighbours: cosine on flattened {nn_tap}, database = "
            f"{len(centre_crops)} photos + {len(batch['image'])} synthetic images."
        ),
        images=[
            ("conv1 filters", rel),
            ("Held-out synthetic predictions", rel_pred),
            ("Predictions on real photos", rel_real),
            (f"{nn_tap} nearest neighbours (query | top-4 per model)", rel_nn),
        ],
    )
    results = {
        "conv1_filters": {"num_filters": filters["num_filters"]},
        "nearest_neighbours": {k: v for k, v in neighbours.items() if k != "path"},
    }
    return section, results
