"""Linear probes on frozen conv1..conv5 features (the paper's ImageNet/Places table).

Protocol (Zhang et al. 2017 as in VISSL): the base is frozen and run in inference mode;
each tap is adaptive-average-pooled to ≈9k dimensions (grid sizes in
``mtsyn_tf.evaluation.features``), flattened, standardised by a BatchNorm without affine
terms, momentum 0.9 (a fixed per-dimension scale after training; it only conditions the
optimisation), and fed to one multinomial logistic regression (dense + softmax) per tap. All taps train
together from one forward pass per batch with SGD (momentum 0.9, decoupled weight decay).
Training views are random crops + flips, evaluation views a centre crop. We report top-1
accuracy (percent) per tap, computed with numpy from the logits.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mtsyn_tf.evaluation import tfds_sources
from mtsyn_tf.evaluation.features import adaptive_pool_matrix, probe_grid_size
from mtsyn_tf.models.presets import ALEXNET_TAPS, VGG16_TAPS

PROBE_TAPS = ("conv1", "conv2", "conv3", "conv4", "conv5")


class AdaptivePoolFlatten(keras.layers.Layer):
    """[B, h, w, c] → [B, g·g·c]: exact adaptive average pooling as two small matmuls."""

    def __init__(self, grid: int, **kwargs):
        super().__init__(**kwargs)
        self.grid = grid

    def build(self, input_shape):
        self.rows = tf.constant(adaptive_pool_matrix(input_shape[1], self.grid))
        self.cols = tf.constant(adaptive_pool_matrix(input_shape[2], self.grid))

    def call(self, x):
        pooled = tf.einsum("ih,bhwc,jw->bijc", self.rows, x, self.cols)
        return tf.reshape(pooled, (-1, self.grid * self.grid * x.shape[-1]))

    def get_config(self):
        return {**super().get_config(), "grid": self.grid}


def build_probe_model(model, num_classes: int, taps=PROBE_TAPS) -> keras.Model:
    """Frozen ``model.backbone`` + one linear softmax classifier per tap: images → {tap: logits}.

    Sets ``model.backbone.trainable = False`` in place (evaluation owns the loaded model).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2. Received: num_classes={num_classes}")
    size = model.image_size
    backbone = model.backbone
    backbone.trainable = False
    images = keras.Input((size, size, 3), name="image")
    if not taps:
        raise ValueError("taps must name at least one layer. Received: taps=()")
    order = ALEXNET_TAPS if model.preset["arch"] == "alexnet" else VGG16_TAPS
    unknown = [t for t in taps if t not in order]
    if unknown:
        raise ValueError(f"Unknown taps. Expected some of {order}. Received: {unknown}")
    features = backbone(images, training=False, up_to=max(taps, key=order.index))
    logits = {}
    for tap in taps:
        h, _, c = features[tap].shape[1:]
        x = AdaptivePoolFlatten(probe_grid_size(h, c), name=f"{tap}_pool")(features[tap])
        x = keras.layers.BatchNormalization(
            center=False, scale=False, momentum=0.9, name=f"{tap}_bn"
        )(x)
        logits[tap] = keras.layers.Dense(num_classes, name=f"{tap}_linear")(x)
    return keras.Model(images, logits, name="linear_probes")


def probe_dimensions(probe: keras.Model) -> dict[str, int]:
    """Flattened feature size each linear classifier sees."""
    return {
        name[: -len("_linear")]: int(probe.get_layer(name).kernel.shape[0])
        for name in (layer.name for layer in probe.layers)
        if name.endswith("_linear")
    }


def train_linear_probes(
    model,
    train_ds: tf.data.Dataset,
    test_ds: tf.data.Dataset,
    num_classes: int,
    taps=PROBE_TAPS,
    epochs: int = 10,
    steps_per_epoch: int | None = None,
    learning_rate: float = 0.01,
    weight_decay: float = 5e-4,
) -> dict:
    """Trains the probes on ``(images, labels)`` batches and scores top-1 on ``test_ds``.

    Returns:
        ``{"top1": {tap: percent}, "dims": {tap: int}, "num_test": int}``.
    """
    probe = build_probe_model(model, num_classes, taps)
    probe.compile(
        optimizer=keras.optimizers.SGD(
            learning_rate, momentum=0.9, nesterov=True, weight_decay=weight_decay
        ),
        loss={t: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in taps},
    )
    fit_ds = train_ds.map(lambda x, y: (x, {t: y for t in taps}))
    probe.fit(fit_ds, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0)
    correct = dict.fromkeys(taps, 0)
    total = 0
    for images, labels in test_ds:
        logits = probe(images, training=False)
        labels = labels.numpy()
        for t in taps:
            correct[t] += int(np.sum(np.argmax(logits[t].numpy(), axis=-1) == labels))
        total += len(labels)
    if total == 0:
        raise ValueError("The test split is empty: no top-1 accuracy to report.")
    return {
        "top1": {t: 100.0 * correct[t] / total for t in taps},
        "dims": probe_dimensions(probe),
        "num_test": total,
    }


def tfds_classification_datasets(
    name: str,
    data_dir: str | None,
    image_size: int,
    batch_size: int,
    train_split: str = "train",
    test_split: str = "validation",
    grayscale: bool = False,
    image_key: str = "image",
    label_key: str = "label",
    seed: int = 0,
    builder=None,
):
    """(train, test, num_classes) ``(images, labels)`` batches from a prepared tfds dataset."""
    import tensorflow_datasets as tfds

    train = tfds_sources.load_split(name, train_split, data_dir, builder)
    test = tfds_sources.load_split(name, test_split, data_dir, builder)
    features = (builder or tfds.builder(name, data_dir=data_dir)).info.features
    if label_key not in features or image_key not in features:
        raise ValueError(
            f"tfds dataset {name!r} lacks {image_key!r}/{label_key!r}. Received features: "
            f"{sorted(features.keys())}"
        )
    num_classes = features[label_key].num_classes
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    train = tf.data.Dataset.zip(train.shuffle(10_000, seed=seed).repeat(), seeds).map(
        lambda ex, s: (
            tfds_sources.random_crop_flip(ex[image_key], image_size, s, grayscale),
            ex[label_key],
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    test = test.map(
        lambda ex: (
            tfds_sources.decode_square(ex[image_key], image_size, grayscale),
            ex[label_key],
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return (
        train.batch(batch_size).prefetch(tf.data.AUTOTUNE),
        test.batch(batch_size).prefetch(tf.data.AUTOTUNE),
        num_classes,
    )


def linear_probe_tfds(
    model,
    name: str = "imagenet2012",
    data_dir: str | None = None,
    batch_size: int = 64,
    epochs: int = 10,
    steps_per_epoch: int | None = None,
    grayscale: bool = False,
    train_split: str = "train",
    test_split: str = "validation",
    taps=PROBE_TAPS,
    learning_rate: float = 0.01,
    builder=None,
) -> dict:
    """Linear probes on any prepared tfds image-classification set (``image``/``label``)."""
    train, test, num_classes = tfds_classification_datasets(
        name,
        data_dir,
        model.image_size,
        batch_size,
        train_split,
        test_split,
        grayscale,
        builder=builder,
    )
    if steps_per_epoch is None:
        import tensorflow_datasets as tfds

        info = (builder or tfds.builder(name, data_dir=data_dir)).info
        steps_per_epoch = max(1, info.splits[train_split].num_examples // batch_size)
    result = train_linear_probes(
        model,
        train,
        test,
        num_classes,
        taps,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=learning_rate,
    )
    return {**result, "dataset": name, "test_split": test_split, "metric": "top-1 accuracy (%)"}
