"""The multi-task network: base B + bottleneck + task heads H (SPEC §1–2)."""

from __future__ import annotations

import keras
from keras import ops

from mtsyn_tf.models.alexnet.backbone import AlexNetBackbone
from mtsyn_tf.models.alexnet.heads import AlexNetTaskHead
from mtsyn_tf.models.discriminator import PatchDiscriminator
from mtsyn_tf.models.presets import get_preset
from mtsyn_tf.models.vgg16.backbone import VGG16Backbone
from mtsyn_tf.models.vgg16.heads import VGG16TaskHead


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class MultiTaskNet(keras.Model):
    """Predicts log-depth, unnormalised normals and contour logits from an image.

    Images are float32 [B, S, S, 3] in [0, 1]. ``call`` returns a dict with the tasks of
    the preset: ``depth`` (log metres, [B, S, S, 1]), ``normals`` ([B, S, S, 3], not
    normalised) and ``contour`` (logits, [B, S, S, 1]). ``forward`` also returns the
    feature taps, so the trainer gets predictions and D's input from one pass.
    """

    def __init__(
        self, preset: dict | str = "paper_alexnet", sync_batchnorm: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self.preset = get_preset(preset)
        self.sync_batchnorm = sync_batchnorm
        p = self.preset

        # === Layers ===
        if p["arch"] == "alexnet":
            self.backbone = AlexNetBackbone(
                p["widths"], sync_batchnorm=sync_batchnorm, name="backbone"
            )
            self.heads = {
                t: AlexNetTaskHead(
                    t, p["decoder_width"], sync_batchnorm=sync_batchnorm, name=f"{t}_head"
                )
                for t in p["tasks"]
            }
        else:
            self.backbone = VGG16Backbone(
                p["widths"], sync_batchnorm=sync_batchnorm, name="backbone"
            )
            self.heads = {
                t: VGG16TaskHead(
                    t, p["decoder_widths"], sync_batchnorm=sync_batchnorm, name=f"{t}_head"
                )
                for t in p["tasks"]
            }
        # Direct attributes as well: tf.train.Checkpoint follows attributes, not dict
        # entries, and the heads' BatchNorm statistics must be in every checkpoint.
        for task, head in self.heads.items():
            setattr(self, f"{task}_head", head)
        self.tasks = tuple(p["tasks"])
        self.image_size = p["image_size"]

    def head_input(self, taps):
        return taps["fc7"] if self.preset["arch"] == "alexnet" else taps

    def forward(self, images, training=None, pre_activation=False):
        """Returns (feature taps, task predictions) from a single forward pass.

        The taps are the post-ReLU outputs, or with ``pre_activation`` the BN outputs
        before each tap's ReLU (the discriminator's input in the reference code). The
        heads always read the post-ReLU features.
        """
        taps, pre = self.backbone(images, training=training, return_pre_activation=True)
        head_input = self.head_input(taps)
        predictions = {t: self.heads[t](head_input, training=training) for t in self.tasks}
        return (pre if pre_activation else taps), predictions

    def call(self, images, training=None):
        return self.forward(images, training=training)[1]

    def predict_physical(self, images):
        """What exports serve: depth in metres, unit camera-frame normals, contour probability."""
        raw = self(images, training=False)
        return to_physical(raw)

    def build_for_size(self):
        """Creates every weight with a one-image forward pass at the preset's size."""
        self(ops.zeros((1, self.image_size, self.image_size, 3)), training=False)
        return self

    def get_config(self):
        # A plain copy: ``self.preset`` is tracked by Keras (a TrackedDict tied to this model).
        return {
            "preset": get_preset(self.preset),
            "sync_batchnorm": self.sync_batchnorm,
            "name": self.name,
        }


def to_physical(raw: dict) -> dict:
    """Maps raw head outputs to physical units (depth = exp(log-depth), etc.)."""
    out = {}
    if "depth" in raw:
        out["depth"] = ops.exp(ops.cast(raw["depth"], "float32"))
    if "normals" in raw:
        n = ops.cast(raw["normals"], "float32")
        out["normals"] = n / ops.maximum(ops.sqrt(ops.sum(n * n, axis=-1, keepdims=True)), 1e-12)
    if "contour" in raw:
        out["contour"] = ops.sigmoid(ops.cast(raw["contour"], "float32"))
    return out


def build_multitask_model(
    preset: dict | str = "paper_alexnet", sync_batchnorm: bool = False, **overrides
):
    """Builds (and creates the weights of) a MultiTaskNet for a preset name or dict."""
    config = get_preset(preset, **overrides)
    return MultiTaskNet(
        config, sync_batchnorm=sync_batchnorm, name=f"mtsyn_{config['arch']}"
    ).build_for_size()


def build_discriminator(
    preset: dict | str = "paper_alexnet", sync_batchnorm: bool = False, **overrides
):
    """Builds the patch discriminator for a preset's domain-adaptation tap."""
    config = get_preset(preset, **overrides)
    kernel = 3 if config["arch"] == "alexnet" else 4
    return PatchDiscriminator(
        config["disc_widths"],
        kernel_size=kernel,
        sync_batchnorm=sync_batchnorm,
        name="discriminator",
    )
