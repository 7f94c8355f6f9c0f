"""``voc07_det`` / ``voc12_det``: Fast R-CNN fine-tuned from the converted AlexNet, test mAP."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluators.transfer import FineTuningEvaluator


@dataclasses.dataclass(frozen=True)
class VOC07DetectionEvaluator(FineTuningEvaluator):
    """``proposals``: the directory of Fast R-CNN's selective_search_data .mat files, or
    ``"gt_jitter"`` (smoke tests only); ``det_scale``: shorter image side in pixels;
    ``batch_size``: images per batch; ``max_train`` / ``max_test``: first N images only."""

    name = "voc07_det"
    title = "VOC 2007 detection (Fast R-CNN)"
    year = "2007"
    proposals: str | None = None
    det_scale: int = 600
    steps: int = 40000
    batch_size: int = 2
    learning_rate: float = 1e-3
    max_train: int | None = None
    max_test: int | None = None

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation.fast_rcnn import detection_sections, voc_detection

        r = voc_detection(
            target.model, self.year, self.data_dir, self.proposals, scale=self.det_scale,
            steps=self.steps, images_per_batch=self.batch_size,
            learning_rate=self.learning_rate, grayscale=self.input_contract(target),
            convention=self.convention, rescale=self.rescale, max_train=self.max_train,
            max_test=self.max_test,
        )  # fmt: skip
        return r, detection_sections(r, self.year)


@dataclasses.dataclass(frozen=True)
class VOC12DetectionEvaluator(VOC07DetectionEvaluator):
    name = "voc12_det"
    title = "VOC 2012 detection (Fast R-CNN)"
    year = "2012"
