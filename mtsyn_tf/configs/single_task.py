"""Table 4 rows 1-3: one task (Edge / Depth / Surf.), no domain adaptation."""

from mtsyn_tf.configs import common
from mtsyn_tf.trainer.config import TrainerConfig


def get_config(scale: str = "paper", task: str = "depth"):
    trainer = TrainerConfig(tasks=(task,), adapt=False)
    return common.base(scale, task, trainer=trainer)
