"""Model presets: the paper's exact shapes, and a narrow `small` preset of the same code.

A preset is a plain dict; `get_preset(name, **overrides)` returns a copy with overrides
applied and checked, so scripts can say `--preset=small --override=decoder_width=32`.
"""

from __future__ import annotations

import copy

ALEXNET_TAPS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
VGG16_TAPS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")
# Taps the paper adapts (SPEC §2); "conv6" is the paper's name for fc6.
DA_TAPS = {"alexnet": ("conv1", "conv4", "conv5", "fc6"), "vgg16": ("conv5_3",)}
TASKS = ("contour", "depth", "normals")

PRESETS = {
    # SPEC §2 table, input 227×227×3.
    "paper_alexnet": {
        "arch": "alexnet",
        "image_size": 227,
        "widths": {
            "conv1": 96,
            "conv2": 256,
            "conv3": 384,
            "conv4": 384,
            "conv5": 256,
            "fc6": 4096,
            "fc7": 4096,
        },
        "decoder_width": 64,
        "disc_widths": (256, 512),
        "da_tap": "conv5",
        "tasks": TASKS,
    },
    # SPEC §2 VGG16 variant (NYUD normals), input 224×224×3.
    "paper_vgg16": {
        "arch": "vgg16",
        "image_size": 224,
        "widths": {"block1": 64, "block2": 128, "block3": 256, "block4": 512, "block5": 512},
        "decoder_widths": (512, 256, 128, 64),
        "disc_widths": (1024, 1024),
        "da_tap": "conv5_3",
        "tasks": TASKS,
    },
    # Same AlexNet code, ~1/20 of the FLOPs: demos, tests, CPU laptops.
    "small": {
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
        "disc_widths": (64, 128),
        "da_tap": "conv5",
        "tasks": TASKS,
    },
    # Same VGG16 code, narrow: tests of the NYUD-normals path.
    "small_vgg16": {
        "arch": "vgg16",
        "image_size": 224,
        "widths": {"block1": 8, "block2": 16, "block3": 24, "block4": 32, "block5": 32},
        "decoder_widths": (32, 24, 16, 8),
        "disc_widths": (32, 32),
        "da_tap": "conv5_3",
        "tasks": TASKS,
    },
}

DEFAULT_PRESET = "paper_alexnet"


def preset_names() -> tuple[str, ...]:
    return tuple(PRESETS)


def get_preset(name: str | dict = DEFAULT_PRESET, **overrides) -> dict:
    """Returns a validated copy of a preset (or of a preset-like dict) with overrides."""
    if isinstance(name, dict):
        config = _plain_copy(name)
    else:
        if name not in PRESETS:
            raise ValueError(
                f"Unknown preset. Expected one of {sorted(PRESETS)}. Received: preset={name!r}"
            )
        config = copy.deepcopy(PRESETS[name])
        config["name"] = name
    for key, value in overrides.items():
        if key not in config:
            raise ValueError(
                f"Unknown preset field. Expected one of {sorted(config)}. Received: {key}={value!r}"
            )
        config[key] = value
    validate_preset(config)
    return config


def _plain_copy(value):
    """Deep copy into builtin dicts/lists/tuples.

    A preset stored on a Keras model comes back as Keras' ``TrackedDict``/``TrackedList``,
    whose tracker references the model: ``copy.deepcopy`` would copy the whole model.
    """
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain_copy(item) for item in value)
    return copy.deepcopy(value)


def validate_preset(config: dict) -> None:
    arch = config.get("arch")
    if arch not in DA_TAPS:
        raise ValueError(f"arch must be one of {sorted(DA_TAPS)}. Received: arch={arch!r}")
    if config["da_tap"] not in DA_TAPS[arch]:
        raise ValueError(
            f"Unknown domain-adaptation tap for {arch}. Expected one of {DA_TAPS[arch]}. "
            f"Received: da_tap={config['da_tap']!r}"
        )
    tasks = tuple(config["tasks"])
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(
            f"tasks must be a non-empty subset of {TASKS} without repeats. Received: tasks={tasks}"
        )
    expected_size = 227 if arch == "alexnet" else 224
    if config["image_size"] != expected_size:
        # The decoders' transposed convolutions reproduce the input size only at this size.
        raise ValueError(
            f"{arch} presets take {expected_size}×{expected_size} inputs (the decoder is built "
            f"for it). Received: image_size={config['image_size']}"
        )
