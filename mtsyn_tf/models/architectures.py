"""The architecture registry: everything that differs between AlexNet-BN and VGG16-BN.

``MultiTaskNet``, ``build_discriminator`` and the preset validation look an architecture
up here by name instead of branching on it; adding one is one new row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mtsyn_tf.models.alexnet.backbone import AlexNetBackbone
from mtsyn_tf.models.alexnet.config import ALEXNET_DA_TAPS, ALEXNET_TAPS, AlexNetArgs
from mtsyn_tf.models.alexnet.heads import AlexNetTaskHead
from mtsyn_tf.models.vgg16.backbone import VGG16Backbone
from mtsyn_tf.models.vgg16.config import VGG16_DA_TAPS, VGG16_TAPS, VGG16Args
from mtsyn_tf.models.vgg16.heads import VGG16TaskHead


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One row of the registry.

    Attributes:
        name: the ``arch`` a preset names.
        args: the typed arguments class (``AlexNetArgs``, ``VGG16Args``).
        image_size: the input size; the decoders reproduce it only at this size.
        taps: the backbone's feature taps, shallow to deep.
        da_taps: the taps the paper adapts (allowed ``da_tap`` values).
        disc_kernel_size: D1's kernel, chosen so D gives 6×6 patch logits on the da taps.
        head_tap: the tap the task heads read, or None when they read every tap (skips).
        build_backbone: ``(args, sync_batchnorm) -> backbone`` (a Keras model named
            "backbone", whose attribute names are the checkpoint's variable paths).
        build_head: ``(task, args, sync_batchnorm) -> head`` (named ``f"{task}_head"``).
    """

    name: str
    args: type
    image_size: int
    taps: tuple[str, ...]
    da_taps: tuple[str, ...]
    disc_kernel_size: int
    head_tap: str | None
    build_backbone: Callable
    build_head: Callable

    def head_input(self, taps: dict):
        return taps if self.head_tap is None else taps[self.head_tap]


ARCHITECTURES = {
    "alexnet": Architecture(
        name="alexnet",
        args=AlexNetArgs,
        image_size=227,
        taps=ALEXNET_TAPS,
        da_taps=ALEXNET_DA_TAPS,
        disc_kernel_size=3,  # conv5's 13×13 → 6×6
        head_tap="fc7",
        build_backbone=lambda args, sb: AlexNetBackbone(
            args.widths, sync_batchnorm=sb, name="backbone"
        ),
        build_head=lambda task, args, sb: AlexNetTaskHead(
            task, args.decoder_width, sync_batchnorm=sb, name=f"{task}_head"
        ),
    ),
    "vgg16": Architecture(
        name="vgg16",
        args=VGG16Args,
        image_size=224,
        taps=VGG16_TAPS,
        da_taps=VGG16_DA_TAPS,
        disc_kernel_size=4,  # conv5_3's 14×14 → 6×6
        head_tap=None,
        build_backbone=lambda args, sb: VGG16Backbone(
            args.widths, sync_batchnorm=sb, name="backbone"
        ),
        build_head=lambda task, args, sb: VGG16TaskHead(
            task, args.decoder_widths, sync_batchnorm=sb, name=f"{task}_head"
        ),
    ),
}


def get_architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}. Received: arch={name!r}")
    return ARCHITECTURES[name]
