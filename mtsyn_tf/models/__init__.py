"""Models: AlexNet-BN / VGG16-BN multi-task networks and the patch discriminator."""

from mtsyn_tf.models.architectures import ARCHITECTURES, Architecture, get_architecture
from mtsyn_tf.models.discriminator import PatchDiscriminator
from mtsyn_tf.models.multitask import (
    MultiTaskNet,
    build_discriminator,
    build_multitask_model,
    load_preset,
    to_physical,
)
from mtsyn_tf.models.presets import (
    DA_TAPS,
    PRESETS,
    TASKS,
    ModelConfig,
    get_preset,
    preset_names,
    resolve_preset,
)

__all__ = [
    "ARCHITECTURES",
    "DA_TAPS",
    "PRESETS",
    "TASKS",
    "Architecture",
    "ModelConfig",
    "MultiTaskNet",
    "PatchDiscriminator",
    "build_discriminator",
    "build_multitask_model",
    "get_architecture",
    "get_preset",
    "load_preset",
    "preset_names",
    "resolve_preset",
    "to_physical",
]
