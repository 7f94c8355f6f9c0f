"""scripts/train.py's flags are generated from RunConfig's fields: coverage, names, precedence."""

from __future__ import annotations

import dataclasses

import pytest
from absl import flags

from mtsyn_tf.configs import get_config
from mtsyn_tf.configs.flags import config_from_flags, define_flags
from mtsyn_tf.configs.settings import settings
from mtsyn_tf.trainer.config import RunConfig, TrainerConfig

# Every flag scripts/train.py had before its flags were generated (tests/scripts/,
# docs/BAD_INPUTS.md and the README use them): each must still exist.
TRAIN_FLAGS_BEFORE = (
    "preset preset_overrides synthetic_dir real_source places365_data_dir workdir restart "
    "batch_size epochs steps_per_epoch learning_rate beta_1 lr_drops seed deterministic "
    "strategy tasks adapt da_tap bi_fool update_base_with_real w_contour w_depth w_normals "
    "w_adversarial contour_normalization disc_features pool_size pool_swap_prob grayscale "
    "min_edge_pixels min_scale real_min_scale synthetic_jitter real_jitter eval_split verbose "
    "precision grad_accum_steps nonfinite_policy optimizer disc_optimizer disc_momentum "
    "disc_weight_decay jit_compile profile_steps"
).split()


def parse(argv, **define_kwargs):
    flag_values = flags.FlagValues()
    define_flags(flag_values, **define_kwargs)
    flag_values(["train.py", *argv])
    return flag_values


def leaf_paths(cls, prefix=""):
    """Every settable leaf of a config class, written out independently of the generator."""
    for field in dataclasses.fields(cls):
        if field.name == "trainer":
            yield from leaf_paths(TrainerConfig, "trainer.")
        elif field.name == "loss_weights":
            yield from (f"trainer.loss_weights.{k}" for k in field.default_factory())
        else:
            yield prefix + field.name


def test_every_field_has_a_flag_or_follows_one():
    flag_values = parse([])
    table = settings()
    for path in leaf_paths(RunConfig):
        setting = table[path]
        if setting.follows:
            assert table[setting.follows].flag in flag_values, path
        else:
            assert setting.flag in flag_values, path
            assert setting.help in flag_values[setting.flag].help


def test_the_old_flag_names_still_exist():
    flag_values = parse([])
    missing = [name for name in TRAIN_FLAGS_BEFORE if name not in flag_values]
    assert not missing


def test_default_flags_give_the_field_defaults():
    config = config_from_flags(parse([]))
    expected = RunConfig(
        workdir="workspace/runs/default", synthetic_dir="workspace/data/synthetic/demo"
    )
    assert config.to_dict() == expected.to_dict()


def test_each_flag_sets_its_field():
    config = config_from_flags(
        parse(
            [
                "--batch_size=3",
                "--tasks=depth,normals",
                "--noadapt",
                "--da_tap=fc6",
                "--w_depth=2.5",
                "--lr_drops=0.5",
                "--profile_steps=2,4",
                '--preset_overrides={"decoder_width": 8}',
                "--real_min_scale=0.3",
                "--seed=7",
                "--nonfinite_policy=skip",
            ]
        )
    )
    assert config.batch_size == 3
    assert config.trainer.tasks == ("depth", "normals")
    assert config.trainer.adapt is False
    assert config.trainer.da_tap == "fc6"
    assert config.trainer.loss_weights == {
        "contour": 3.0,
        "depth": 2.5,
        "normals": 10.0,
        "adversarial": 0.05,
    }
    assert config.lr_drops == (0.5,)
    assert config.profile_steps == (2, 4)
    assert config.preset_overrides == {"decoder_width": 8}
    assert config.real_min_scale == 0.3
    assert config.nonfinite_policy == "skip"
    # One --seed seeds the run and the in-step randomness, as before.
    assert (config.seed, config.trainer.seed) == (7, 7)


def test_config_then_given_flags_then_set():
    config = config_from_flags(
        parse(
            [
                "--config=demo/multitask_da_conv5",
                "--batch_size=4",
                "--set=trainer.da_tap=conv4",
                "--set=trainer.loss_weights.normals=1",
            ]
        )
    )
    named = get_config("demo/multitask_da_conv5")
    # Flags not given keep the experiment's values, not the flags' defaults.
    assert config.preset == named.preset == "small"
    assert config.epochs == named.epochs
    assert config.trainer.min_edge_pixels == named.trainer.min_edge_pixels
    assert config.batch_size == 4
    assert config.trainer.da_tap == "conv4"
    assert config.trainer.loss_weights["normals"] == 1.0


def test_bad_values_are_one_line_errors():
    with pytest.raises(ValueError, match=r"--set=trainer\.da_tap|both as --da_tap"):
        config_from_flags(parse(["--da_tap=conv4", "--set=trainer.da_tap=conv1"]))
    with pytest.raises(ValueError, match="close matches: trainer.da_tap"):
        config_from_flags(parse(["--set=trainer.da_tp=conv1"]))
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        config_from_flags(parse(["--set=batch_size"]))
    with pytest.raises(ValueError, match="--lr_drops must be a number"):
        config_from_flags(parse(["--lr_drops=soon"]))
    with pytest.raises(ValueError, match="--preset_overrides must be a JSON object"):
        config_from_flags(parse(["--preset_overrides={width"]))
    with pytest.raises(ValueError, match="--tasks must be one of"):
        config_from_flags(parse(["--tasks=depth,sky"]))
    with pytest.raises(flags.IllegalFlagValueError):
        parse(["--config=demo/no_such_run"])


def test_a_script_can_expose_a_subset_with_its_own_defaults():
    flag_values = parse(
        [], include=("preset", "batch_size", "trainer.disc_features"), defaults={"batch_size": 8}
    )
    assert "epochs" not in flag_values and "disc_features" in flag_values
    config = config_from_flags(flag_values)
    assert config.batch_size == 8
