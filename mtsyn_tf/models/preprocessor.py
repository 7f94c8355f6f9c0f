"""A run's input contract: the one test-time transform between an RGB photo and the network.

A run trained with ``grayscale`` (the paper's input, ``scripts/train.py`` default) saw one
random RGB channel repeated three times. At test time there is nothing random to draw, so
the deterministic equivalent is fed instead: the mean of the three channels, repeated
three times (same scale as a single channel; a grey image passes through unchanged up to
float rounding). A colour-trained run gets its RGB input as is.

This layer is the only place that transform is written. The trainer's ``test_step``, the
evaluators, the SavedModel signatures, the ONNX models, ``scripts/predict.py`` and the
standard-AlexNet export all call it, so what is served is what was evaluated.

Where the contract is recorded (keras-hub style: a preprocessor with ``get_config``):
  * a training run's ``config.json`` holds ``"input_contract": InputContract.record()``
    (written by ``trainer/loop.py``); ``InputContract.from_run_config`` reads it back;
  * a SavedModel / ONNX / standard-AlexNet export holds ``input_contract.json`` beside the
    model, and the transform itself is inside the exported graph.

Runs from before the contract was recorded: the contract is derived from the recorded
``trainer.grayscale`` (what the run trained on); a config with neither gets the colour
contract (identity) and a warning: feeding the image as given is the only choice that
assumes nothing about the run.
"""

from __future__ import annotations

import json
import os
import warnings

import keras
from keras import ops

COLOR_MODES = ("rgb", "grayscale")
CONTRACT_FILENAME = "input_contract.json"


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class InputContract(keras.layers.Layer):
    """float [B, S, S, 3] RGB in [0, 1] → the network's test-time input for this run.

    Args:
        color_mode: ``"grayscale"`` (channel mean repeated 3×; the run trained on one
            random channel repeated) or ``"rgb"`` (identity; a colour-trained run).
    """

    def __init__(self, color_mode: str = "rgb", **kwargs):
        super().__init__(**kwargs)
        if color_mode not in COLOR_MODES:
            raise ValueError(
                f"color_mode must be one of {COLOR_MODES}. Received: color_mode={color_mode!r}"
            )
        self.color_mode = color_mode

    @property
    def grayscale(self) -> bool:
        return self.color_mode == "grayscale"

    def call(self, images):
        if not self.grayscale:
            return images
        mean = ops.mean(images, axis=-1, keepdims=True)
        return ops.repeat(mean, 3, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "color_mode": self.color_mode}

    # === Construction from what a run or an export recorded ===
    @classmethod
    def for_grayscale(cls, grayscale: bool) -> InputContract:
        """The contract of a run whose ``TrainerConfig.grayscale`` is ``grayscale``."""
        return cls("grayscale" if grayscale else "rgb")

    @classmethod
    def from_run_config(cls, config: dict, source: str = "config.json") -> InputContract:
        """Reads ``config["input_contract"]``; older runs: derived from ``trainer.grayscale``.

        A config with neither (hand-written, or written before the trainer recorded its
        settings) gets the colour contract and a warning naming ``source``.
        """
        if not isinstance(config, dict):
            raise ValueError(f"A run config must be a dict. Received: {type(config).__name__}")
        recorded = config.get("input_contract")
        if recorded is not None:
            if not isinstance(recorded, dict) or recorded.get("color_mode") not in COLOR_MODES:
                raise ValueError(
                    f"{source}: input_contract must be {{'color_mode': one of {COLOR_MODES}}}. "
                    f"Received: input_contract={recorded!r}"
                )
            return cls(recorded["color_mode"])
        trainer = config.get("trainer")
        if isinstance(trainer, dict) and "grayscale" in trainer:
            return cls.for_grayscale(bool(trainer["grayscale"]))
        warnings.warn(
            f"{source} records neither input_contract nor trainer.grayscale; feeding the "
            "model RGB as is (colour contract). Add "
            '"input_contract": {"color_mode": "grayscale"} if the run trained on grey inputs.',
            stacklevel=2,
        )
        return cls("rgb")

    @classmethod
    def from_run_file(cls, config_path: str) -> InputContract:
        """``from_run_config`` of a run's ``config.json``."""
        try:
            with open(config_path) as f:
                config = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"Unreadable config.json ({err}). Received: {config_path}") from err
        return cls.from_run_config(config, source=config_path)

    # === Recording ===
    def record(self) -> dict:
        """What a run's config.json and an export's input_contract.json hold."""
        return {"color_mode": self.color_mode}

    def write(self, directory: str, **extra) -> str:
        """Writes ``<directory>/input_contract.json`` (``record()`` plus ``extra`` notes)."""
        path = os.path.join(directory, CONTRACT_FILENAME)
        with open(path, "w") as f:
            json.dump({**self.record(), **extra}, f, indent=2, sort_keys=True)
        return path

    @classmethod
    def read(cls, directory: str) -> InputContract | None:
        """The contract written by ``write`` into ``directory`` (None when there is none)."""
        path = os.path.join(directory, CONTRACT_FILENAME)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return cls.from_run_config({"input_contract": json.load(f)}, source=path)


def as_input_contract(contract_or_grayscale) -> InputContract:
    """An ``InputContract`` as is, or the contract of a run's ``grayscale`` flag (a bool)."""
    if isinstance(contract_or_grayscale, InputContract):
        return contract_or_grayscale
    if isinstance(contract_or_grayscale, bool):
        return InputContract.for_grayscale(contract_or_grayscale)
    raise ValueError(
        "Expected an InputContract or a bool (the run's grayscale flag). "
        f"Received: {contract_or_grayscale!r}"
    )
