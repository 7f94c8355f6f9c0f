"""Typed presets: lookup, dict view, overrides, the registry and the validation errors
(each one line naming the bad value)."""

import json

import numpy as np
import pytest

from mtsyn_tf.models import (
    ARCHITECTURES,
    PRESETS,
    ModelConfig,
    build_discriminator,
    build_multitask_model,
    get_preset,
    preset_names,
    resolve_preset,
)
from mtsyn_tf.models.alexnet.backbone import AlexNetBackbone
from mtsyn_tf.models.alexnet.config import AlexNetArgs
from mtsyn_tf.models.alexnet.heads import AlexNetTaskHead
from mtsyn_tf.models.layers import ConvBNAct
from mtsyn_tf.models.vgg16.backbone import VGG16Backbone
from mtsyn_tf.models.vgg16.config import VGG16Args
from mtsyn_tf.models.vgg16.heads import VGG16TaskHead

# The dict view every run recorded as ``resolved_preset`` before presets were typed: the
# typed presets must reproduce it key for key (a resumed run compares it with its record).
RECORDED_SMALL = {
    "arch": "alexnet",
    "image_size": 227,
    "widths": {
        "conv1": 32,
        "conv2": 64,
        "conv3": 96,
        "conv4": 96,
        "conv5": 64,
        "fc6": 256,
        "fc7": 256,
    },
    "decoder_width": 16,
    "disc_widths": [64, 128],
    "da_tap": "conv5",
    "tasks": ["contour", "depth", "normals"],
    "name": "small",
}


def test_preset_names_and_defaults():
    assert set(preset_names()) == {"paper_alexnet", "paper_vgg16", "small", "small_vgg16"}
    assert get_preset()["name"] == "paper_alexnet"
    assert get_preset("paper_alexnet")["da_tap"] == "conv5"
    assert get_preset("paper_vgg16")["da_tap"] == "conv5_3"


def test_get_preset_returns_an_independent_copy_with_overrides():
    config = get_preset("small", decoder_width=8, da_tap="conv1")
    assert config["decoder_width"] == 8 and config["da_tap"] == "conv1"
    config["widths"]["conv1"] = 1
    assert PRESETS["small"].backbone.widths["conv1"] == 32
    assert PRESETS["small"].backbone.decoder_width == 16
    assert get_preset(config)["widths"]["conv1"] == 1  # a dict preset is accepted as is


def test_presets_are_typed_data_with_the_recorded_dict_view():
    for name, config in PRESETS.items():
        assert isinstance(config, ModelConfig) and config.name == name
        assert isinstance(config.backbone, ARCHITECTURES[config.arch].args)
        view = json.loads(json.dumps(config.to_dict()))  # as config.json holds it
        assert ModelConfig.from_dict(view) == config
    assert json.loads(json.dumps(get_preset("small"))) == RECORDED_SMALL
    assert resolve_preset(RECORDED_SMALL) == PRESETS["small"]
    assert set(get_preset("paper_vgg16")) == set(RECORDED_SMALL) - {"decoder_width"} | {
        "decoder_widths"
    }


def test_the_registry_builds_each_architecture():
    for preset, backbone, head in [
        ("small", AlexNetBackbone, AlexNetTaskHead),
        ("small_vgg16", VGG16Backbone, VGG16TaskHead),
    ]:
        model = build_multitask_model(preset, tasks=("depth",))
        assert type(model.backbone) is backbone and type(model.depth_head) is head
        assert model.config is not None and model.preset == get_preset(preset, tasks=("depth",))
        disc = build_discriminator(preset)
        assert disc.kernel_size == ARCHITECTURES[model.config.arch].disc_kernel_size


@pytest.mark.parametrize(
    "args, overrides, match",
    [
        (("alexnet_huge",), {}, "preset='alexnet_huge'"),
        (("small",), {"da_tap": "conv3"}, "da_tap='conv3'"),
        (("small",), {"da_tap": "conv5_3"}, "da_tap='conv5_3'"),
        (("small_vgg16",), {"da_tap": "conv4_3"}, "da_tap='conv4_3'"),
        (("small",), {"image_size": 224}, "image_size=224"),
        (("paper_vgg16",), {"image_size": 227}, "image_size=227"),
        (("small",), {"decoder_widht": 8}, "decoder_widht=8"),
        (("small",), {"tasks": ("depth", "sky")}, "sky"),
        (("small",), {"tasks": ("depth", "depth")}, "depth"),
        (("small",), {"tasks": ()}, r"tasks=\(\)"),
        (("small",), {"arch": "resnet"}, "arch='resnet'"),
        (("small",), {"arch": "vgg16"}, "decoder_width=16"),
        (("small",), {"decoder_width": 0}, "decoder_width=0"),
        (("small",), {"decoder_width": 16.0}, "decoder_width=16.0"),
        (("small",), {"widths": {"conv1": 8}}, "Missing: .'conv2'"),
        (("small",), {"disc_widths": (64,)}, r"disc_widths=\(64,\)"),
        (("small",), {"image_size": "227"}, "image_size='227'"),
        (("small_vgg16",), {"decoder_widths": (8, 8, 8)}, r"decoder_widths=\(8, 8, 8\)"),
        (("small_vgg16",), {"decoder_widths": (8, 8, 8, -1)}, r"decoder_widths\[3\]=-1"),
    ],
)
def test_invalid_presets_name_the_value(args, overrides, match):
    with pytest.raises(ValueError, match=match):
        get_preset(*args, **overrides)
    with pytest.raises(ValueError, match=match):
        build_multitask_model(*args, **overrides)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: AlexNetArgs(widths={"conv1": 8}, decoder_width=8), "Missing"),
        (lambda: AlexNetArgs(widths=[96] * 7, decoder_width=8), "must be a dict"),
        (
            lambda: VGG16Args(widths=dict.fromkeys(("block1", "block2")), decoder_widths=(1,)),
            "block3",
        ),
        (
            lambda: VGG16Args(widths={f"block{i}": 8 for i in range(1, 6)}, decoder_widths="8888"),
            "decoder_widths",
        ),
        (
            lambda: ModelConfig("vgg16", PRESETS["small"].backbone, 224, (8, 8), "conv5_3"),
            "VGG16Args",
        ),
        (
            lambda: ModelConfig("alexnet", PRESETS["small"].backbone, 227, (8, 8), "conv5", name=3),
            "name=3",
        ),
        (lambda: ModelConfig.from_dict({**RECORDED_SMALL, "disc_widths": None}), "disc_widths"),
        (lambda: ModelConfig.from_dict({"arch": "alexnet"}), "lacks the fields"),
        (lambda: ModelConfig.from_dict(["alexnet"]), "must be a dict"),
    ],
)
def test_typed_arguments_are_validated(build, match):
    with pytest.raises(ValueError, match=match) as err:
        build()
    assert "\n" not in str(err.value)


def test_single_task_preset_builds_only_that_head():
    model = build_multitask_model("small", tasks=("depth",))
    assert list(model.heads) == ["depth"]
    outputs = model(np.zeros((1, 227, 227, 3), np.float32))
    assert set(outputs) == {"depth"}


def test_layer_argument_errors():
    backbone = build_multitask_model("small").backbone
    with pytest.raises(ValueError, match="up_to='conv6'"):
        backbone(np.zeros((1, 227, 227, 3), np.float32), up_to="conv6")
    with pytest.raises(ValueError, match="fc7"):
        AlexNetBackbone({"conv1": 8})
    with pytest.raises(ValueError, match="task='sky'"):
        AlexNetTaskHead("sky", 8)
    with pytest.raises(ValueError, match="activation='gelu'"):
        ConvBNAct(8, 3, activation="gelu")
    with pytest.raises(ValueError, match="filters=0"):
        ConvBNAct(0, 3)
