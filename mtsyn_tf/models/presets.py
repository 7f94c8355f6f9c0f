"""Model presets as data: the paper's exact shapes, and narrow presets of the same code.

A preset is a typed ``ModelConfig``: the architecture's name, its typed arguments
(``AlexNetArgs`` / ``VGG16Args``), the discriminator's widths, the adapted tap and the
tasks. Its dict view, ``ModelConfig.to_dict()`` (what ``get_preset`` returns), is the flat
form a run records as ``resolved_preset`` in its config.json and scripts override with
``--preset_overrides``: ``arch``, ``image_size``, ``widths``, ``decoder_width`` (AlexNet)
or ``decoder_widths`` (VGG16), ``disc_widths``, ``da_tap``, ``tasks`` and ``name``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from mtsyn_tf.models.alexnet.config import ALEXNET_TAPS, AlexNetArgs
from mtsyn_tf.models.architectures import ARCHITECTURES, Architecture, get_architecture
from mtsyn_tf.models.arguments import positive_int, positive_ints
from mtsyn_tf.models.vgg16.config import VGG16_TAPS, VGG16Args

__all__ = ["ALEXNET_TAPS", "DA_TAPS", "PRESETS", "TASKS", "VGG16_TAPS", "ModelConfig"]

TASKS = ("contour", "depth", "normals")
DA_TAPS = {name: arch.da_taps for name, arch in ARCHITECTURES.items()}
_COMMON_FIELDS = ("arch", "image_size", "disc_widths", "da_tap", "tasks")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A validated model preset; every field error is one line naming the value."""

    arch: str
    backbone: AlexNetArgs | VGG16Args
    image_size: int
    disc_widths: tuple
    da_tap: str
    tasks: tuple = TASKS
    name: str | None = None

    def __post_init__(self):
        arch = get_architecture(self.arch)
        if not isinstance(self.backbone, arch.args):
            raise ValueError(
                f"arch {self.arch!r} takes {arch.args.__name__} arguments. "
                f"Received: backbone={type(self.backbone).__name__}"
            )
        if positive_int("image_size", self.image_size) != arch.image_size:
            # The decoders' transposed convolutions reproduce the input size only at this size.
            raise ValueError(
                f"{arch.name} presets take {arch.image_size}×{arch.image_size} inputs (the "
                f"decoder is built for it). Received: image_size={self.image_size}"
            )
        if self.da_tap not in arch.da_taps:
            raise ValueError(
                f"Unknown domain-adaptation tap for {arch.name}. Expected one of "
                f"{arch.da_taps}. Received: da_tap={self.da_tap!r}"
            )
        tasks = tuple(self.tasks) if not isinstance(self.tasks, str) else (self.tasks,)
        if not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
            raise ValueError(
                f"tasks must be a non-empty subset of {TASKS} without repeats. "
                f"Received: tasks={tasks}"
            )
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"name must be a string. Received: name={self.name!r}")
        object.__setattr__(self, "tasks", tasks)
        object.__setattr__(self, "disc_widths", positive_ints("disc_widths", self.disc_widths, 2))

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.arch]

    def to_dict(self) -> dict:
        """The flat dict view (plain Python, JSON-ready): what runs record and scripts override."""
        view = {
            "arch": self.arch,
            "image_size": self.image_size,
            **self.backbone.to_dict(),
            "disc_widths": self.disc_widths,
            "da_tap": self.da_tap,
            "tasks": self.tasks,
        }
        return view if self.name is None else {**view, "name": self.name}

    @classmethod
    def from_dict(cls, view: Mapping, source: str = "preset") -> ModelConfig:
        """Parses the flat dict view (a run's ``resolved_preset``, JSON lists accepted)."""
        if not isinstance(view, Mapping):
            raise ValueError(f"A {source} must be a dict. Received: {type(view).__name__}")
        arch = get_architecture(view.get("arch"))
        arg_fields = tuple(f.name for f in dataclasses.fields(arch.args))
        known = (*_COMMON_FIELDS, *arg_fields, "name")
        for key, value in view.items():
            if key not in known:
                raise ValueError(
                    f"Unknown {arch.name} preset field in the {source}. Expected one of "
                    f"{sorted(known)}. Received: {key}={value!r}"
                )
        missing = [k for k in known[:-1] if k not in view]
        if missing:
            raise ValueError(f"The {source} lacks the fields {missing}. Received: {dict(view)}")
        return cls(
            arch=arch.name,
            backbone=arch.args(**{f: view[f] for f in arg_fields}),
            image_size=view["image_size"],
            disc_widths=view["disc_widths"],
            da_tap=view["da_tap"],
            tasks=view["tasks"],
            name=view.get("name"),
        )

    def with_overrides(self, **overrides) -> ModelConfig:
        """A copy with fields of the dict view replaced (``widths`` as a whole dict)."""
        view = self.to_dict()
        for key, value in overrides.items():
            if key not in view:
                raise ValueError(
                    f"Unknown preset field. Expected one of {sorted(view)}. "
                    f"Received: {key}={value!r}"
                )
        return ModelConfig.from_dict({**view, **overrides}) if overrides else self


_PAPER_ALEXNET_WIDTHS = {
    "conv1": 96,
    "conv2": 256,
    "conv3": 384,
    "conv4": 384,
    "conv5": 256,
    "fc6": 4096,
    "fc7": 4096,
}

PRESETS = {
    # SPEC §2 table, input 227×227×3.
    "paper_alexnet": ModelConfig(
        arch="alexnet",
        backbone=AlexNetArgs(widths=_PAPER_ALEXNET_WIDTHS, decoder_width=64),
        image_size=227,
        disc_widths=(256, 512),
        da_tap="conv5",
        name="paper_alexnet",
    ),
    # SPEC §2 VGG16 variant (NYUD normals), input 224×224×3.
    "paper_vgg16": ModelConfig(
        arch="vgg16",
        backbone=VGG16Args(
            widths={"block1": 64, "block2": 128, "block3": 256, "block4": 512, "block5": 512},
            decoder_widths=(512, 256, 128, 64),
        ),
        image_size=224,
        disc_widths=(1024, 1024),
        da_tap="conv5_3",
        name="paper_vgg16",
    ),
    # Same AlexNet code, ~1/20 of the FLOPs: demos, tests, CPU laptops.
    "small": ModelConfig(
        arch="alexnet",
        backbone=AlexNetArgs(
            widths={
                "conv1": 32,
                "conv2": 64,
                "conv3": 96,
                "conv4": 96,
                "conv5": 64,
                "fc6": 256,
                "fc7": 256,
            },
            decoder_width=16,
        ),
        image_size=227,
        disc_widths=(64, 128),
        da_tap="conv5",
        name="small",
    ),
    # Same VGG16 code, narrow: tests of the NYUD-normals path.
    "small_vgg16": ModelConfig(
        arch="vgg16",
        backbone=VGG16Args(
            widths={"block1": 8, "block2": 16, "block3": 24, "block4": 32, "block5": 32},
            decoder_widths=(32, 24, 16, 8),
        ),
        image_size=224,
        disc_widths=(32, 32),
        da_tap="conv5_3",
        name="small_vgg16",
    ),
}

DEFAULT_PRESET = "paper_alexnet"


def preset_names() -> tuple[str, ...]:
    return tuple(PRESETS)


def resolve_preset(preset: str | Mapping | ModelConfig = DEFAULT_PRESET, **overrides):
    """The ``ModelConfig`` of a preset name, a flat preset dict or a config, with overrides."""
    if isinstance(preset, ModelConfig):
        config = preset
    elif isinstance(preset, Mapping):
        config = ModelConfig.from_dict(preset)
    elif preset in PRESETS:
        config = PRESETS[preset]
    else:
        raise ValueError(
            f"Unknown preset. Expected one of {sorted(PRESETS)}. Received: preset={preset!r}"
        )
    return config.with_overrides(**overrides)


def get_preset(preset: str | Mapping | ModelConfig = DEFAULT_PRESET, **overrides) -> dict:
    """The validated dict view of a preset (a fresh copy) with overrides applied."""
    return resolve_preset(preset, **overrides).to_dict()
