"""Settings shared by the fine-tuning protocols (VOC classification and detection)."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluator import Evaluator

TRANSFER_INPUTS = ("color", "pretraining")
CONVENTIONS = ("voc07_11point", "voc10_area")


@dataclasses.dataclass(frozen=True)
class FineTuningEvaluator(Evaluator):
    """``rescale``: Krähenbühl data-dependent rescaling of the converted AlexNet first (the
    reference's protocol). ``transfer_input``: ``"color"`` images, as the reference
    fine-tunes whatever the pretraining input, or ``"pretraining"``: the run's own input
    contract. ``convention``: the VOC AP definition."""

    data_dir: str | None = None
    rescale: bool = True
    transfer_input: str = "color"
    convention: str = "voc07_11point"

    def __post_init__(self):
        super().__post_init__()
        self.one_of("transfer_input", TRANSFER_INPUTS)
        self.one_of("convention", CONVENTIONS)

    def input_contract(self, target):
        from mtsyn_tf.models.preprocessor import InputContract

        if self.transfer_input == "pretraining":
            return target.input_contract
        return InputContract("rgb")
