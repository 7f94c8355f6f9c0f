import json

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.object_detection.voc import Voc

from mtsyn_tf.evaluation import fast_rcnn, proposals
from mtsyn_tf.evaluation.registry import evaluate
from mtsyn_tf.models import build_multitask_model
from tests.evaluation.conftest import write_trainer_workdir

COLOURS = {0: (230, 40, 40), 1: (40, 40, 230)}  # aeroplane red, bicycle blue


class TinyDetVoc(Voc, skip_registration=True):
    """tfds' VOC builder under its real name (``voc/2007``) with 4 + 3 generated images.

    Each image (48×64) holds one coloured rectangle of class 0 or 1, and image 0 of a
    split also a grey *difficult* object of class 1.
    """

    name = "voc"

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples("tr", 2, 0),
            "validation": self._generate_examples("va", 2, 1),
            "test": self._generate_examples("te", 3, 2),
        }

    def _generate_examples(self, prefix, num, seed):
        yield from enumerate(tiny_examples(prefix, num, seed))


def tiny_examples(prefix, num, seed):
    rng = np.random.default_rng(seed)
    for i in range(num):
        image = rng.integers(90, 140, (48, 64, 3)).astype(np.uint8)
        c = i % 2
        y1, x1 = rng.integers(1, 16), rng.integers(1, 24)
        y2, x2 = y1 + rng.integers(18, 30), x1 + rng.integers(20, 38)
        image[y1 - 1 : y2, x1 - 1 : x2] = COLOURS[c]
        bbox = tfds.features.BBox(y1 / 48, x1 / 64, y2 / 48, x2 / 64)
        objects = [{"label": c, "bbox": bbox, "pose": 0, "is_truncated": False,
                    "is_difficult": False}]  # fmt: skip
        if i == 0:
            image[40:47, 50:62] = 200
            bbox = tfds.features.BBox(41 / 48, 51 / 64, 47 / 48, 62 / 64)
            objects.append({**objects[0], "label": 1, "bbox": bbox, "is_difficult": True})
        labels = sorted({o["label"] for o in objects})
        easy = sorted({o["label"] for o in objects if not o["is_difficult"]})
        yield {"image": image, "image/filename": f"{prefix}{i:04d}.jpg", "objects": objects,
               "labels": labels, "labels_no_difficult": easy}  # fmt: skip


def write_selective_search(directory, records_by_file, rng):
    """Fast R-CNN's layout: cell arrays ``images`` (ids) and ``boxes`` (y1 x1 y2 x2, 1-based)."""
    for filename, records in records_by_file.items():
        ids = np.empty((len(records), 1), dtype=object)
        boxes = np.empty((len(records), 1), dtype=object)
        for k, r in enumerate(records):
            h, w = r["image"].shape[:2]
            ids[k, 0] = r["id"]
            boxes[k, 0] = np.round(proposals.gt_jitter_proposals(r["boxes"], h, w, rng))
        scipy.io.savemat(str(directory / filename), {"images": ids, "boxes": boxes})


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = TinyDetVoc(config="2007", data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig())
    ss_dir = tmp_path_factory.mktemp("selective_search_data")
    rng = np.random.default_rng(0)
    load = fast_rcnn.load_detection_split
    write_selective_search(ss_dir, {
        "voc_2007_trainval.mat": load("voc/2007", "train+validation", str(data_dir)),
        "voc_2007_test.mat": load("voc/2007", "test", str(data_dir)),
    }, rng)  # fmt: skip
    return str(data_dir), str(ss_dir)


def roi_pool_reference(features, box_cells, pooled=6):
    """numpy: bilinear samples at a 2p × 2p grid over the box's conv5 cells, then 2×2 max."""
    _, h, w, c = features.shape
    y1, x1, y2, x2 = box_cells
    n = 2 * pooled
    out = np.zeros((n, n, c))
    for i in range(n):
        y = y1 + i * (y2 - y1) / (n - 1)
        for j in range(n):
            x = x1 + j * (x2 - x1) / (n - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1i, x1i = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            f = features[0]
            out[i, j] = ((1 - dy) * (1 - dx) * f[y0, x0] + (1 - dy) * dx * f[y0, x1i]
                         + dy * (1 - dx) * f[y1i, x0] + dy * dx * f[y1i, x1i])  # fmt: skip
    return out.reshape(pooled, 2, pooled, 2, c).max(axis=(1, 3))


def test_roi_pool_matches_numpy_reference():
    rng = np.random.default_rng(0)
    features = rng.random((1, 5, 7, 3)).astype(np.float32)
    # Cell m is centred on 0-based pixel 16 m + 17, i.e. 1-based pixel 16 m + 18.
    boxes = np.array([[18, 18, 18 + 16 * 4, 18 + 16 * 6], [26, 34, 58, 90], [1, 1, 500, 40]])
    pooled = fast_rcnn.roi_pool(tf.constant(features), tf.constant(boxes, tf.float32)).numpy()
    assert pooled.shape == (3, 6, 6, 3)
    cells = [(0, 0, 4, 6), (0.5, 1, 2.5, 4.5), (0, 0, 4, 22 / 16)]  # the last one clipped
    for k, box_cells in enumerate(cells):
        np.testing.assert_allclose(pooled[k], roi_pool_reference(features, box_cells), atol=1e-5)
    # The whole-map box samples the corner cells exactly, so its corner bins bound them.
    assert np.all(pooled[0, 0, 0] >= features[0, 0, 0] - 1e-6)
    assert np.all(pooled[0, -1, -1] >= features[0, -1, -1] - 1e-6)


def test_box_deltas_round_trip_and_flip():
    rois = np.array([[1, 1, 10, 20], [5, 7, 30, 9]], float)
    gt = np.array([[2, 3, 12, 18], [4, 5, 33, 15]], float)
    np.testing.assert_allclose(fast_rcnn.decode_deltas(rois, fast_rcnn.encode_deltas(rois, gt)), gt, atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(fast_rcnn.flip_boxes(fast_rcnn.flip_boxes(gt, 40), 40), gt)
    np.testing.assert_allclose(fast_rcnn.flip_boxes([[1, 1, 5, 10]], 40), [[1, 31, 5, 40]])


def test_sample_rois_keeps_a_quarter_foreground():
    rng = np.random.default_rng(0)
    gt = np.array([[10, 10, 40, 40]], float)
    props = proposals.gt_jitter_proposals(gt, 64, 64, rng, per_box=30, num_random=60)
    rois, labels, targets = fast_rcnn.sample_rois(props, gt, np.array([3]), 16, rng)
    fg = labels > 0
    assert len(rois) == 16 and fg.sum() == 4 and np.all(labels[fg] == 4)
    assert np.all(fast_rcnn.iou_matrix(rois[fg], gt) >= 0.5)
    assert np.all(fast_rcnn.iou_matrix(rois[~fg], gt) < 0.5) and np.all(targets[~fg] == 0)


def test_nms_suppresses_overlaps_above_threshold():
    # IoU with box 0: 0.9, 0.4, 0.2 and 0 (inclusive pixels).
    boxes = np.array(
        [[1, 1, 10, 10], [1, 1, 10, 9], [1, 1, 10, 4], [1, 1, 10, 2], [20, 20, 30, 30]]
    )
    keep = fast_rcnn.nms(boxes.astype(float), np.array([0.9, 0.8, 0.7, 0.6, 0.5]), 0.3)
    assert keep.tolist() == [0, 3, 4]


def test_selective_search_reading_and_missing_files(voc_dir, tmp_path):
    _, ss_dir = voc_dir
    table = proposals.load_selective_search(ss_dir, "2007", "test")
    assert sorted(table) == ["te0000", "te0001", "te0002"]
    assert all(b.shape[1] == 4 and b.min() >= 1 for b in table.values())
    with pytest.raises(ValueError, match="voc_2007_trainval.mat"):
        proposals.load_selective_search(str(tmp_path), "2007", "train+validation")


def test_voc07_det_protocol_end_to_end(voc_dir, tmp_path):
    data_dir, ss_dir = voc_dir
    run = write_trainer_workdir(build_multitask_model("small"), tmp_path / "run")
    out = tmp_path / "det"
    results, _ = evaluate(run, ["voc07_det"], str(out), data_dir=data_dir, proposals=ss_dir,
                          steps=30, batch_size=2, det_scale=64, convention="voc10_area")  # fmt: skip
    r = results["voc07_det"]
    assert np.isfinite(r["map"]) and 0.0 <= r["map"] <= 1.0 and r["num_detections"] > 0
    # Fine-tuning learns: the softmax starts near chance (ln 21 ≈ 3.04) and drops well below.
    assert r["first_loss"]["cls"] > 2.5 and r["final_loss"]["cls"] < 2.0, r["final_loss"]
    assert r["classes_evaluated"] == [0, 1] and r["num_train"] == 4 and r["num_test"] == 3
    assert np.all(np.isfinite(list(r["final_loss"].values())))
    saved = json.loads((out / "results.json").read_text())["voc07_det"]
    assert saved["convention"] == "voc10_area" and len(saved["per_class_ap"]) == 20
    assert "aeroplane" in (out / "report.md").read_text()
    with pytest.raises(ValueError, match="tfds build voc/2012 --data_dir="):
        evaluate(run, ["voc12_det"], str(tmp_path / "x"), data_dir=str(tmp_path / "none"),
                 proposals="gt_jitter")  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_evaluate_script_runs_detection_with_gt_jitter(voc_dir, tmp_path):
    from tests.evaluation.test_evaluate_script import _evaluate

    data_dir, _ = voc_dir
    run = write_trainer_workdir(build_multitask_model("small"), tmp_path / "run")
    out = tmp_path / "det"
    done = _evaluate("--protocol=voc07_det", f"--workdir={run}", f"--output_dir={out}",
                     f"--data_dir={data_dir}", "--proposals=gt_jitter", "--steps=2",
                     "--det_scale=64")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())["voc07_det"]
    assert "gt_jitter" in results["protocol"] and results["steps"] == 2
    missing = _evaluate("--protocol=voc07_det", f"--workdir={run}", f"--output_dir={tmp_path / 'x'}",
                        f"--data_dir={data_dir}", f"--proposals={tmp_path}")  # fmt: skip
    assert missing.returncode != 0 and "voc_2007_trainval.mat" in missing.stderr
    assert not (tmp_path / "x").exists()
