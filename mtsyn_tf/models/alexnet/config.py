"""Typed arguments of the AlexNet-BN multi-task model (SPEC §2 table) and its feature taps."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.models.arguments import positive_int, width_table

ALEXNET_TAPS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
# Taps the paper adapts (SPEC §2); "conv6" is the paper's name for fc6.
ALEXNET_DA_TAPS = ("conv1", "conv4", "conv5", "fc6")


@dataclasses.dataclass(frozen=True)
class AlexNetArgs:
    """Channel widths of the AlexNet-BN backbone and of its task decoders.

    Args:
        widths: output channels of every tap, ``{"conv1": 96, …, "fc7": 4096}`` at paper size.
        decoder_width: channels of each task head's Deconv8–Deconv10 (the paper's 64).
    """

    widths: dict
    decoder_width: int

    def __post_init__(self):
        table = width_table("widths", self.widths, ALEXNET_TAPS)
        object.__setattr__(self, "widths", table)  # a checked copy, in tap order
        positive_int("decoder_width", self.decoder_width)

    def to_dict(self) -> dict:
        return {"widths": dict(self.widths), "decoder_width": self.decoder_width}
