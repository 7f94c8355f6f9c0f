"""Each named experiment resolves to the paper's settings (Table 4 rows, SPEC §3).

The expected values are written out here from the paper and SPEC, not read from
mtsyn_tf/configs/, so a config that drifts from the paper fails.
"""

from __future__ import annotations

import dataclasses

import pytest

from mtsyn_tf.configs import EXPERIMENTS, config_names, get_config
from mtsyn_tf.models.presets import get_preset
from mtsyn_tf.trainer.schedule import reference_lr_schedule

THREE = ("contour", "depth", "normals")
# Table 4: (tasks, adaptation tap or None, bi-fool, #data), and the §4.5 VGG16 model.
TABLE4 = {
    "contour": (("contour",), None, False, 500_000),  # row 1 "Edge"
    "depth": (("depth",), None, False, 500_000),  # row 2
    "normals": (("normals",), None, False, 500_000),  # row 3 "Surf."
    "multitask_noda": (THREE, None, False, 500_000),  # row 4 "3 tasks, -"
    "multitask_da_conv1": (THREE, "conv1", False, 500_000),  # row 5
    "multitask_da_conv4": (THREE, "conv4", False, 500_000),  # row 6
    "multitask_da_conv5": (THREE, "conv5", False, 500_000),  # row 7
    "multitask_da_fc6": (THREE, "fc6", False, 500_000),  # row 8 "conv6"
    "multitask_da_conv5_bifool": (THREE, "conv5", True, 500_000),  # row 9
    "full_model": (THREE, "conv5", False, 1_500_000),  # row 10
    "vgg16_normals": (THREE, "conv5_3", False, 1_500_000),  # §4.5, NYUD normals
}
# SPEC §3 (reference code): batch 224 = 28 per GPU × 8 GPUs, 30 epochs, LR ×0.1 at epochs
# 18 and 27; B/H Adam 1e-3 β1 0.5; D SGD momentum 0.9, weight decay 5e-4; D pool 128
# (swap 0.5); images with < 350 contour pixels resampled; grayscale input; D reads the
# tap before its ReLU. λd 5, λs 10, adversarial 0.05; λe 3 with the per-edge-pixel
# contour loss (README "Loss scales": the reference's λe 1 goes with its own edge loss).
PAPER = {
    "batch_size": 28,
    "epochs": 30,
    "learning_rate": 1e-3,
    "beta_1": 0.5,
    "optimizer": "adam",
    "disc_optimizer": "sgd",
    "disc_momentum": 0.9,
    "disc_weight_decay": 5e-4,
    "real_source": "places365",
    "grad_accum_steps": 1,
    "precision": "float32",
}
PAPER_TRAINER = {
    "loss_weights": {"contour": 3.0, "depth": 5.0, "normals": 10.0, "adversarial": 0.05},
    "contour_normalization": "edges",
    "pool_size": 128,
    "pool_swap_prob": 0.5,
    "min_edge_pixels": 350,
    "grayscale": True,
    "disc_features": "pre_activation",
    "update_base_with_real": False,
}
GLOBAL_BATCH = 224


def test_the_registry_names_every_table4_row_at_both_scales():
    assert set(EXPERIMENTS) == set(TABLE4)
    assert set(config_names()) == {f"{s}/{e}" for s in ("paper", "demo") for e in TABLE4}


@pytest.mark.parametrize("experiment", sorted(TABLE4))
def test_paper_config_matches_the_paper(experiment):
    tasks, tap, bi_fool, images = TABLE4[experiment]
    cfg = get_config(f"paper/{experiment}")
    vgg = experiment == "vgg16_normals"
    assert cfg.preset == ("paper_vgg16" if vgg else "paper_alexnet")
    preset = get_preset(cfg.preset, **cfg.preset_overrides)
    assert preset["image_size"] == (224 if vgg else 227)
    assert preset["widths"]["conv1" if not vgg else "block1"] == (96 if not vgg else 64)
    trainer = cfg.trainer.validate(preset["arch"], preset["tasks"])
    assert trainer.tasks == tasks
    assert trainer.adapt == (tap is not None)
    if tap is not None:
        assert (trainer.da_tap or preset["da_tap"]) == tap
    assert trainer.real_images_update_base == bi_fool
    for key, value in PAPER.items():
        assert getattr(cfg, key) == value, key
    for key, value in PAPER_TRAINER.items():
        assert getattr(trainer, key) == value, key
    # One epoch is one pass over the data at the global batch of 224.
    assert cfg.steps_per_epoch == -(-images // GLOBAL_BATCH)
    # LR ×0.1 at the first update of epochs 18 and 27 (0-based 18·S and 27·S).
    s = cfg.steps_per_epoch
    schedule = reference_lr_schedule(cfg.learning_rate, cfg.epochs * s, cfg.lr_drops)
    rates = [float(schedule(step)) for step in (0, 18 * s - 1, 18 * s, 27 * s - 1, 27 * s)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5], rel=1e-6)


EXPERIMENT_FIELDS = ("tasks", "adapt", "da_tap", "bi_fool", "update_base_with_real")


@pytest.mark.parametrize("experiment", sorted(TABLE4))
def test_demo_config_is_the_same_experiment_on_the_small_preset(experiment):
    paper, demo = get_config(f"paper/{experiment}"), get_config(f"demo/{experiment}")
    for key in EXPERIMENT_FIELDS + ("loss_weights", "pool_size", "grayscale", "disc_features"):
        assert getattr(demo.trainer, key) == getattr(paper.trainer, key), key
    for key in ("learning_rate", "beta_1", "lr_drops", "optimizer", "disc_optimizer"):
        assert getattr(demo, key) == getattr(paper, key), key
    assert demo.preset == ("small_vgg16" if experiment == "vgg16_normals" else "small")
    assert demo.real_source == "embedded"
    # A few minutes on a 2-core CPU (README "Named experiments"): ≤ 200 steps of batch ≤ 8.
    assert demo.epochs * demo.steps_per_epoch <= 200 and demo.batch_size <= 8
    assert demo.workdir != paper.workdir


def test_overrides_are_typed_and_checked():
    cfg = get_config(
        "demo/multitask_da_conv5",
        seed=2,
        batch_size="4",
        **{"trainer.da_tap": "conv4", "trainer.loss_weights.depth": 1, "tasks": "depth,normals"},
    )
    assert (cfg.seed, cfg.trainer.seed) == (2, 2)  # trainer.seed follows seed
    assert cfg.batch_size == 4 and cfg.trainer.da_tap == "conv4"
    assert cfg.trainer.loss_weights["depth"] == 1.0
    assert cfg.trainer.tasks == ("depth", "normals")
    # The registry's own value is not modified.
    assert get_config("demo/multitask_da_conv5").trainer.da_tap == "conv5"
    assert get_config("demo/depth", seed=3, **{"trainer.seed": 5}).trainer.seed == 5


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("demo/contur", {}, r"Unknown config name 'demo/contur'; close matches: demo/contour"),
        ("paper/conv5", {}, r"Unknown config name"),
        ("demo/depth", {"trainer.da_tp": "x"}, r"close matches: trainer\.da_tap"),
        (
            "demo/depth",
            {"batchsize": 2},
            r"Unknown config field 'batchsize'; close matches: batch_size",
        ),
        ("demo/depth", {"da_tap": "conv3"}, r"must be one of .*Received: trainer\.da_tap='conv3'"),
        ("demo/depth", {"epochs": 2.5}, r"epochs must be an integer"),
        ("demo/depth", {"adapt": "maybe"}, r"adapt must be true or false"),
        ("demo/depth", {"trainer.loss_weights": {"edges": 1}}, r"unknown: \['edges'\]"),
    ],
)
def test_unknown_names_and_fields_are_one_line_errors(name, overrides, message):
    with pytest.raises(ValueError, match=message) as info:
        get_config(name, **overrides)
    assert "\n" not in str(info.value)


def test_every_config_is_a_complete_run_config():
    for name in config_names():
        cfg = get_config(name)
        assert dataclasses.asdict(cfg)  # every field set, nested trainer included
        assert cfg.workdir.startswith("workspace/runs/")
