"""Table 4 row 4: the three tasks without domain adaptation."""

from mtsyn_tf.configs import common
from mtsyn_tf.models.presets import TASKS
from mtsyn_tf.trainer.config import TrainerConfig


def get_config(scale: str = "paper"):
    trainer = TrainerConfig(tasks=TASKS, adapt=False)
    return common.base(scale, "multitask_noda", trainer=trainer)
