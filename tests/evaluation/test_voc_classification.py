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


def test_finetune_runs_and_reports_the_convention(voc_builder):
    model = build_multitask_model("small")
    result = finetune_voc07(model, builder=voc_builder, steps=3, batch_size=4, test_crops="center")
    assert result["num_train"] == 40 and result["num_test"] == 20
    assert 0.0 <= result["map"] <= 1.0 and result["convention"] == "voc07_11point"


def test_unprepared_voc_names_the_command(tmp_path):
    with pytest.raises(ValueError, match="tfds build voc/2007 --data_dir="):
        load_voc("voc/2007", "test", str(tmp_path))
