import numpy as np
import pytest
import tensorflow_datasets as tfds

from mtsyn_tf.evaluation.voc_classification import (
    devkit_labels,
    evaluation_views,
    finetune_voc07,
    load_voc,
    voc07_svm,
)
from mtsyn_tf.metrics import voc_mean_average_precision
from mtsyn_tf.models import build_multitask_model
from tests.evaluation.tfds_fixtures import TinyVoc


@pytest.fixture(scope="module")
def voc_builder(tmp_path_factory):
    builder = TinyVoc(config="2007", data_dir=str(tmp_path_factory.mktemp("tfds")))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig())
    return builder


def test_devkit_labels():
    y = devkit_labels([2, 5, 7], [5])
    assert y[5] == 1 and y[2] == 0 and y[7] == 0 and y[0] == -1 and (y == -1).sum() == 17


def test_load_voc_reads_difficult(voc_builder):
    images, labels = load_voc("voc/2007", "test", None, builder=voc_builder)
    assert len(images) == 20 and labels.shape == (20, 20)
    # tfds shuffles records by key: check the label structure, not the order.
    assert np.all((labels == 1).sum(axis=1) == 1) and (labels == 0).sum() == 4
    assert np.all((labels == 1).sum(axis=0) == 1)


def test_ten_crops_are_mirrored_corners():
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    views = evaluation_views(image, 227, "ten")
    assert views.shape == (10, 227, 227, 3)
    np.testing.assert_array_equal(views[5], views[0][:, ::-1])
    np.testing.assert_array_equal(evaluation_views(image, 227, "center")[0], views[4])
    with pytest.raises(ValueError, match="ten"):
        evaluation_views(image, 227, "five")


def test_svm_on_frozen_features_beats_chance(voc_builder):
    model = build_multitask_model("small")
    result = voc07_svm(model, builder=voc_builder, tap="fc7")
    assert result["convention"] == "voc07_11point" and len(result["per_class_ap"]) == 20
    # One positive per class among 20 test images: chance AP is about 0.18.
    assert result["map"] > 0.6, result["map"]
    pooled = voc07_svm(model, builder=voc_builder, tap="conv5", convention="voc10_area")
    assert pooled["convention"] == "voc10_area" and pooled["map"] > 0.6


def _voc07_11point_ap(scores, positive, ignore):
    """The VOC2007 devkit's AP (VOCevalcls.m), written out independently: rank the
    non-difficult images by score; AP = mean over recall t in {0, 0.1, .., 1} of the best
    precision at recall >= t (0 where none)."""
    keep = ~ignore
    order = np.argsort(-scores[keep], kind="stable")
    hits = positive[keep][order]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    recall, precision = tp / hits.sum(), tp / (tp + fp)
    return np.mean(
        [
            precision[recall >= t].max() if (recall >= t).any() else 0.0
            for t in np.linspace(0, 1, 11)
        ]
    )


def test_finetune_reports_the_devkit_map_of_its_test_scores(voc_builder, monkeypatch):
    """The reported mAP is the 11-point VOC07 AP of the fine-tuned net's test scores, with
    "difficult" labels (0) left out, averaged over the 20 classes."""
    import mtsyn_tf.evaluation.voc_classification as voc

    calls = []  # one per test-crop setting: "center" (1 crop) then "ten"

    def spy(scores, labels, difficult, convention):
        calls.append(dict(scores=np.asarray(scores), labels=labels, difficult=difficult))
        return voc_mean_average_precision(scores, labels, difficult, convention=convention)

    monkeypatch.setattr(voc, "voc_mean_average_precision", spy)
    model = build_multitask_model("small")
    result = finetune_voc07(model, builder=voc_builder, steps=3, batch_size=4, test_crops="center")
    assert result["num_train"] == 40 and result["num_test"] == 20
    assert result["convention"] == "voc07_11point"
    _, test_labels = load_voc("voc/2007", "test", None, builder=voc_builder)
    assert len(calls) == 2 and sorted(result["map_by_crops"]) == ["center", "ten"]
    for crops, seen in zip(("center", "ten"), calls):
        np.testing.assert_array_equal(seen["labels"], test_labels > 0)
        np.testing.assert_array_equal(seen["difficult"], test_labels == 0)
        # fc8 logits (the reference ranks by summed logits, not sigmoids).
        scores = seen["scores"]
        assert scores.shape == (20, 20) and np.all(np.isfinite(scores))
        assert np.unique(scores).size > 20  # per image and class, not one constant
        expected = [
            _voc07_11point_ap(scores[:, c], test_labels[:, c] > 0, test_labels[:, c] == 0)
            for c in range(20)
        ]
        assert result["map_by_crops"][crops] == pytest.approx(np.mean(expected), rel=1e-12)
        if crops == "center":  # the requested setting is the one reported
            np.testing.assert_allclose(result["per_class_ap"], expected, rtol=1e-12)
            assert result["map"] == pytest.approx(np.mean(expected), rel=1e-12)


def test_unprepared_voc_names_the_command(tmp_path):
    with pytest.raises(ValueError, match="tfds build voc/2007 --data_dir="):
        load_voc("voc/2007", "test", str(tmp_path))
