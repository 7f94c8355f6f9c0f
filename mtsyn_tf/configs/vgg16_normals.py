"""The VGG16 model of the NYUD surface-normal experiment (paper §4.5, SPEC §2).

Three tasks, DA at conv5_3 (its only tap), 224² input. The paper gives no training settings
for it beyond the architecture; it uses the final AlexNet model's (row 10: 1.5M images;
README "Deviations").
"""

from mtsyn_tf.configs import common
from mtsyn_tf.models.presets import TASKS
from mtsyn_tf.trainer.config import TrainerConfig


def get_config(scale: str = "paper"):
    trainer = TrainerConfig(tasks=TASKS, adapt=True, da_tap="conv5_3")
    config = common.base(scale, "vgg16_normals", trainer=trainer, images=common.PAPER_IMAGES_LARGE)
    config.preset = "paper_vgg16" if scale == "paper" else "small_vgg16"
    return config
