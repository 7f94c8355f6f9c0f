"""Typed arguments of the VGG16-BN multi-task model (SPEC §2 VGG16 variant) and its taps."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.models.arguments import positive_ints, width_table

VGG16_BLOCKS = ("block1", "block2", "block3", "block4", "block5")
VGG16_TAPS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")
# The paper adapts conv5_3 only for the VGG16 variant (SPEC §2).
VGG16_DA_TAPS = ("conv5_3",)


@dataclasses.dataclass(frozen=True)
class VGG16Args:
    """Channel widths of the VGG16-BN backbone and of its skip decoders.

    Args:
        widths: channels of each block's 3×3 convs, ``{"block1": 64, …, "block5": 512}``.
        decoder_widths: channels of Deconv1…Deconv4 of each task head (paper: 512…64).
    """

    widths: dict
    decoder_widths: tuple

    def __post_init__(self):
        table = width_table("widths", self.widths, VGG16_BLOCKS)
        object.__setattr__(self, "widths", table)
        object.__setattr__(
            self, "decoder_widths", positive_ints("decoder_widths", self.decoder_widths, 4)
        )

    def to_dict(self) -> dict:
        return {"widths": dict(self.widths), "decoder_widths": self.decoder_widths}
