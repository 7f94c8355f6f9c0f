"""Runs ``loop.train`` with ``strategy="mirrored"`` on two logical CPUs; prints the results.

``python mirrored_run.py '<RunConfig fields as JSON>'``, started by ``test_mirrored_run.py``:
the logical devices must be configured before TensorFlow initialises, which cannot happen
inside a pytest process that already ran TF.
"""

import json
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

from mtsyn_tf.trainer.config import RunConfig, TrainerConfig  # noqa: E402
from mtsyn_tf.trainer.loop import train  # noqa: E402

if __name__ == "__main__":
    fields = json.loads(sys.argv[1])
    fields["trainer"] = TrainerConfig(**fields.get("trainer", {}))
    print(json.dumps(train(RunConfig(**fields))))
