"""Preset lookup, overrides and the validation errors (each naming the bad value)."""

import numpy as np
import pytest

from mtsyn_tf.models import PRESETS, build_multitask_model, get_preset, preset_names
from mtsyn_tf.models.alexnet.backbone import AlexNetBackbone
from mtsyn_tf.models.alexnet.heads import AlexNetTaskHead
from mtsyn_tf.models.layers import ConvBNAct


def test_preset_names_and_defaults():
    assert set(preset_names()) == {"paper_alexnet", "paper_vgg16", "small", "small_vgg16"}
    assert get_preset()["name"] == "paper_alexnet"
    assert get_preset("paper_alexnet")["da_tap"] == "conv5"
    assert get_preset("paper_vgg16")["da_tap"] == "conv5_3"


def test_get_preset_returns_an_independent_copy_with_overrides():
    config = get_preset("small", decoder_width=8, da_tap="conv1")
    assert config["decoder_width"] == 8 and config["da_tap"] == "conv1"
    config["widths"]["conv1"] = 1
    assert PRESETS["small"]["widths"]["conv1"] == 32
    assert PRESETS["small"]["decoder_width"] == 16
    assert get_preset(config)["widths"]["conv1"] == 1  # a dict preset is accepted as is


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
    ],
)
def test_invalid_presets_name_the_value(args, overrides, match):
    with pytest.raises(ValueError, match=match):
        get_preset(*args, **overrides)
    with pytest.raises(ValueError, match=match):
        build_multitask_model(*args, **overrides)


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
