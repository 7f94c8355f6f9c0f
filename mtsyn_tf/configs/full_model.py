"""Table 4 row 10, the paper's final model: three tasks, DA at conv5, 1.5M synthetic images.

At demo scale the data is the demo's render, so this equals ``demo/multitask_da_conv5``.
"""

from mtsyn_tf.configs import common
from mtsyn_tf.models.presets import TASKS
from mtsyn_tf.trainer.config import TrainerConfig


def get_config(scale: str = "paper"):
    trainer = TrainerConfig(tasks=TASKS, adapt=True, da_tap="conv5")
    return common.base(scale, "full_model", trainer=trainer, images=common.PAPER_IMAGES_LARGE)
