"""Table 4 row 9: DA at conv5, fooling D both ways (real features also pushed to "synthetic")."""

from mtsyn_tf.configs import common
from mtsyn_tf.models.presets import TASKS
from mtsyn_tf.trainer.config import TrainerConfig


def get_config(scale: str = "paper"):
    trainer = TrainerConfig(tasks=TASKS, adapt=True, da_tap="conv5", bi_fool=True)
    return common.base(scale, "multitask_da_conv5_bifool", trainer=trainer)
