"""Table 4 rows 5-8: the three tasks with domain adaptation at one tap.

``fc6`` is the paper's "conv6" (its fc6 is a convolution). conv5 is the paper's choice.
"""

from mtsyn_tf.configs import common
from mtsyn_tf.models.presets import TASKS
from mtsyn_tf.trainer.config import TrainerConfig


def get_config(scale: str = "paper", tap: str = "conv5"):
    trainer = TrainerConfig(tasks=TASKS, adapt=True, da_tap=tap)
    return common.base(scale, f"multitask_da_{tap}", trainer=trainer)
