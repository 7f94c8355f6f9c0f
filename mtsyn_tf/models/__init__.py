"""Models: AlexNet-BN / VGG16-BN multi-task networks and the patch discriminator."""

from mtsyn_tf.models.discriminator import PatchDiscriminator
from mtsyn_tf.models.multitask import (
    MultiTaskNet,
    build_discriminator,
    build_multitask_model,
    to_physical,
)
from mtsyn_tf.models.presets import DA_TAPS, PRESETS, TASKS, get_preset, preset_names

__all__ = [
    "DA_TAPS",
    "PRESETS",
    "TASKS",
    "MultiTaskNet",
    "PatchDiscriminator",
    "build_discriminator",
    "build_multitask_model",
    "get_preset",
    "preset_names",
    "to_physical",
]
