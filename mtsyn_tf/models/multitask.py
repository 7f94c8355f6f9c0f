"""The multi-task network: base B + bottleneck + task heads H (SPEC §1–2)."""

from __future__ import annotations

import keras
from keras import ops

from mtsyn_tf.models import saved_preset
from mtsyn_tf.models.discriminator import PatchDiscriminator
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.models.presets import ModelConfig, resolve_preset


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class MultiTaskNet(keras.Model):
    """Predicts log-depth, unnormalised normals and contour logits from an image.

    Images are float32 [B, S, S, 3] in [0, 1]. ``call`` returns a dict with the tasks of
    the preset: ``depth`` (log metres, [B, S, S, 1]), ``normals`` ([B, S, S, 3], not
    normalised) and ``contour`` (logits, [B, S, S, 1]). ``forward`` also returns the
    feature taps, so the trainer gets predictions and D's input from one pass.
    """

    def __init__(
        self,
        preset: str | dict | ModelConfig = "paper_alexnet",
        sync_batchnorm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = resolve_preset(preset)
        self.sync_batchnorm = sync_batchnorm
        arch, args = self.config.architecture, self.config.backbone

        # === Layers (the architecture's row of the registry) ===
        self.backbone = arch.build_backbone(args, sync_batchnorm)
        self.heads = {t: arch.build_head(t, args, sync_batchnorm) for t in self.config.tasks}
        # Direct attributes as well: tf.train.Checkpoint follows attributes, not dict
        # entries, and the heads' BatchNorm statistics must be in every checkpoint.
        for task, head in self.heads.items():
            setattr(self, f"{task}_head", head)
        self.tasks = self.config.tasks
        self.image_size = self.config.image_size
        # Set by ``from_preset``: where the weights came from and the run's input contract.
        self._load_info = None

    @property
    def preset(self) -> dict:
        """The dict view of ``self.config`` (a fresh plain copy): ``preset["arch"]`` etc."""
        return self.config.to_dict()

    @property
    def load_info(self) -> dict | None:
        """What ``from_preset`` loaded (see ``saved_preset.load_preset``); None if built here."""
        return None if self._load_info is None else dict(self._load_info)

    @property
    def input_contract(self) -> InputContract | None:
        """The test-time input transform of the run this model was loaded from; None for a
        model built here (nothing recorded what it is to be fed)."""
        return None if self._load_info is None else self._load_info["input_contract"]

    # === Saved presets (keras-hub layout; see models/saved_preset.py) ===
    @classmethod
    def from_preset(
        cls,
        path_or_name: str,
        architecture: str | None = None,
        expected_preset: str | dict | None = None,
        load_weights: bool = True,
    ):
        """The model of a saved preset directory, a training run or a built-in preset name.

        A training workdir, its checkpoints directory or a checkpoint prefix loads the
        run's newest (or named) checkpoint. A built-in name (``preset_names()``) has no
        published weights: it needs ``load_weights=False``. ``architecture`` or
        ``expected_preset`` make a model of another arch or shape raise. The result
        carries ``input_contract`` (feed it through that) and ``load_info``.
        """
        return saved_preset.load_preset(
            cls, path_or_name, architecture, expected_preset, load_weights
        )[0]

    def save_to_preset(
        self, directory: str, input_contract: InputContract | None = None, overwrite=False
    ) -> str:
        """Writes config.json, model.weights.h5, preprocessor.json and metadata.json into
        ``directory`` (atomically); ``input_contract`` defaults to the loaded one."""
        return saved_preset.save_to_preset(self, directory, input_contract, overwrite)

    def head_input(self, taps):
        return self.config.architecture.head_input(taps)

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
        return {
            "preset": self.config.to_dict(),
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
    config = resolve_preset(preset, **overrides)
    return MultiTaskNet(
        config, sync_batchnorm=sync_batchnorm, name=f"mtsyn_{config.arch}"
    ).build_for_size()


def build_discriminator(
    preset: dict | str = "paper_alexnet", sync_batchnorm: bool = False, **overrides
):
    """Builds the patch discriminator for a preset's domain-adaptation tap."""
    config = resolve_preset(preset, **overrides)
    return PatchDiscriminator(
        config.disc_widths,
        kernel_size=config.architecture.disc_kernel_size,
        sync_batchnorm=sync_batchnorm,
        name="discriminator",
    )


def load_preset(
    path_or_name: str,
    architecture: str | None = None,
    expected_preset: str | dict | None = None,
    load_weights: bool = True,
):
    """``(model, info)``: ``MultiTaskNet.from_preset`` plus the loader's info dict
    (checkpoint, config path, preset dict, input contract, run record, metadata)."""
    return saved_preset.load_preset(
        MultiTaskNet, path_or_name, architecture, expected_preset, load_weights
    )
