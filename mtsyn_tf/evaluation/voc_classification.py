"""PASCAL VOC 2007 multi-label classification on transferred features (paper §4.2).

Ground truth per image and class follows the devkit: 1 if a non-difficult object of the
class is present, 0 ("difficult") if only difficult ones are, −1 otherwise; tfds'
``labels`` / ``labels_no_difficult`` give exactly that. Difficult entries are ignored both
in training and in AP. AP is the VOC07 11-point devkit AP unless ``convention`` says
``voc10_area``; results always carry the convention name.

Two protocols:

* ``finetune_voc07``: the AlexNet base + bottleneck converted to a standard AlexNet
  (``mtsyn_tf.export.convert_to_standard_alexnet``: BN folded, fc6/fc7 dense) — or, for
  VGG16, the base with global average pooling — plus dropout and a 20-way linear layer,
  all fine-tuned with per-class sigmoid cross-entropy (SGD, momentum 0.9) on random crops
  and flips of trainval. Test scores average the sigmoid over 10 crops (4 corners + centre
  of the image resized to 256/227·S, and their mirrors; Krähenbühl et al.'s evaluation)
  or use one centre crop (``test_crops="center"``, faster).
* ``voc07_svm``: frozen features (``fc7`` by default; any tap, pooled to ≈9k dims),
  L2-normalised, one scikit-learn ``LinearSVC`` per class (Goyal et al. 2019's benchmark).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mtsyn_tf.evaluation import tfds_sources
from mtsyn_tf.evaluation.domain_gap import pooled_vectors
from mtsyn_tf.metrics import voc_mean_average_precision

NUM_CLASSES = 20


def devkit_labels(labels, labels_no_difficult) -> np.ndarray:
    """One image's [20] devkit vector (1 / 0 difficult-only / −1) from tfds' label lists."""
    out = np.full(NUM_CLASSES, -1, np.int8)
    out[np.asarray(labels, np.int64)] = 0
    out[np.asarray(labels_no_difficult, np.int64)] = 1
    return out


def load_voc(name: str, split: str, data_dir: str | None, builder=None, limit: int | None = None):
    """(uint8 images list, devkit labels [N, 20]) of a prepared tfds VOC split."""
    ds = tfds_sources.load_split(name, split, data_dir, builder)
    images, labels = [], []
    for ex in ds.take(limit) if limit else ds:
        images.append(ex["image"].numpy())
        labels.append(devkit_labels(ex["labels"].numpy(), ex["labels_no_difficult"].numpy()))
    if not images:
        raise ValueError(f"Split {split!r} of {name!r} is empty.")
    return images, np.stack(labels)


def classification_trunk(model) -> keras.Model:
    """images [B, S, S, 3] → feature vector: standard-AlexNet fc7, or pooled VGG16 conv5_3."""
    size = model.image_size
    if model.preset["arch"] == "alexnet":
        from mtsyn_tf.export import convert_to_standard_alexnet

        alexnet = convert_to_standard_alexnet(model)
        return keras.Model(alexnet.input, alexnet.output["fc7"], name="alexnet_fc7")
    images = keras.Input((size, size, 3))
    taps = model.backbone(images)
    return keras.Model(
        images, keras.layers.GlobalAveragePooling2D()(taps["conv5_3"]), name="vgg16_gap"
    )


def masked_sigmoid_loss(y_true, logits):
    """Per-class sigmoid cross-entropy, difficult (0) entries weighted 0."""
    y_true = tf.cast(y_true, tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(y_true > 0, tf.float32), logits)
    weight = tf.cast(tf.not_equal(y_true, 0.0), tf.float32)
    return tf.reduce_sum(ce * weight, axis=-1) / tf.maximum(tf.reduce_sum(weight, axis=-1), 1.0)


def evaluation_views(image: np.ndarray, size: int, crops: str) -> np.ndarray:
    """[V, S, S, 3] test views: 1 centre crop or 10 crops (corners + centre, mirrored)."""
    big = int(round(size * 256 / 227))
    resized = tf.image.resize(
        tf.image.convert_image_dtype(image, tf.float32), (big, big), antialias=True
    )
    resized = np.clip(resized.numpy(), 0, 1)
    c = (big - size) // 2
    if crops == "center":
        return resized[None, c : c + size, c : c + size]
    if crops != "ten":
        raise ValueError(f"test_crops must be 'ten' or 'center'. Received: {crops!r}")
    offsets = [(0, 0), (0, big - size), (big - size, 0), (big - size, big - size), (c, c)]
    views = [resized[y : y + size, x : x + size] for y, x in offsets]
    return np.stack(views + [v[:, ::-1] for v in views])


def finetune_voc07(
    model, name: str = "voc/2007", data_dir: str | None = None, steps: int = 2000,
    batch_size: int = 32, learning_rate: float = 1e-3, test_crops: str = "ten",
    grayscale: bool = False, convention: str = "voc07_11point", builder=None, seed: int = 0,
    train_split: str = "train+validation", test_split: str = "test",
) -> dict:  # fmt: skip
    """Fine-tunes the transferred net on trainval and reports test mAP (see module doc)."""
    size = model.image_size
    train_images, train_labels = load_voc(name, train_split, data_dir, builder)
    test_images, test_labels = load_voc(name, test_split, data_dir, builder)
    trunk = classification_trunk(model)
    images = keras.Input((size, size, 3))
    x = keras.layers.Dropout(0.5)(trunk(images))
    net = keras.Model(images, keras.layers.Dense(NUM_CLASSES, name="voc_logits")(x))
    net.compile(keras.optimizers.SGD(learning_rate, momentum=0.9), loss=masked_sigmoid_loss)

    lengths = len(train_images)

    def gen():
        rng = np.random.default_rng(seed)
        while True:
            i = int(rng.integers(lengths))
            yield train_images[i], train_labels[i], rng.integers(0, 2**31, 2)

    sig = (
        tf.TensorSpec((None, None, 3), tf.uint8),
        tf.TensorSpec((NUM_CLASSES,), tf.int8),
        tf.TensorSpec((2,), tf.int64),
    )
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig).map(
        lambda im, y, s: (tfds_sources.random_crop_flip(im, size, s, grayscale), y)
    )
    net.fit(ds.batch(batch_size), steps_per_epoch=steps, epochs=1, verbose=0)
    scores = []
    for image in test_images:
        views = evaluation_views(image, size, test_crops)
        if grayscale:
            views = np.repeat(views.mean(-1, keepdims=True), 3, axis=-1)
        scores.append(tf.sigmoid(net(views, training=False)).numpy().mean(axis=0))
    result = voc_mean_average_precision(
        np.stack(scores), test_labels > 0, test_labels == 0, convention=convention
    )
    return {**result, "protocol": f"fine-tune, {test_crops} crop(s)", "num_train": lengths,
            "num_test": len(test_images)}  # fmt: skip


def svm_features(model, images, tap: str, grayscale: bool, batch_size: int = 16) -> np.ndarray:
    """[N, D] L2-normalised features: standard-AlexNet fc6/fc7 vectors, else pooled taps."""
    from mtsyn_tf.evaluation.features import extract_features, square_resize

    size = model.image_size
    x = np.stack([square_resize(im, size) for im in images])
    if model.preset["arch"] == "alexnet" and tap in ("fc6", "fc7"):
        from mtsyn_tf.export import convert_to_standard_alexnet

        alexnet = convert_to_standard_alexnet(model)
        if grayscale:
            x = np.repeat(x.mean(-1, keepdims=True), 3, axis=-1)
        f = np.concatenate(
            [alexnet(x[i : i + batch_size])[tap].numpy() for i in range(0, len(x), batch_size)]
        )
    else:
        f = pooled_vectors(extract_features(model, x, [tap], batch_size, grayscale)[tap])
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def voc07_svm(
    model, name: str = "voc/2007", data_dir: str | None = None, tap: str = "fc7",
    cost: float = 0.5, grayscale: bool = False, convention: str = "voc07_11point",
    builder=None, train_split: str = "train+validation", test_split: str = "test",
) -> dict:  # fmt: skip
    """Per-class linear SVMs on frozen features; test mAP (difficult ignored)."""
    from sklearn.svm import LinearSVC

    train_images, train_labels = load_voc(name, train_split, data_dir, builder)
    test_images, test_labels = load_voc(name, test_split, data_dir, builder)
    f_train = svm_features(model, train_images, tap, grayscale)
    f_test = svm_features(model, test_images, tap, grayscale)
    scores = np.zeros((len(f_test), NUM_CLASSES))
    for c in range(NUM_CLASSES):
        keep = train_labels[:, c] != 0
        y = train_labels[keep, c] > 0
        if y.all() or not y.any():
            scores[:, c] = 0.0 if not y.any() else 1.0  # no negative or no positive to learn from
            continue
        svm = LinearSVC(C=cost, class_weight={True: 2.0, False: 1.0}, max_iter=5000)
        scores[:, c] = svm.fit(f_train[keep], y).decision_function(f_test)
    result = voc_mean_average_precision(
        scores, test_labels > 0, test_labels == 0, convention=convention
    )
    return {
        **result,
        "protocol": f"linear SVM on {tap}",
        "num_train": len(f_train),
        "num_test": len(f_test),
    }
