"""PASCAL VOC 2007 multi-label classification on transferred features (paper §4.2).

Ground truth per image and class follows the devkit: 1 if a non-difficult object of the
class is present, 0 ("difficult") if only difficult ones are, −1 otherwise; tfds'
``labels`` / ``labels_no_difficult`` give exactly that. Difficult entries are ignored both
in training and in AP. AP is the VOC07 11-point devkit AP unless ``convention`` says
``voc10_area``; results always carry the convention name.

Two protocols:

* ``finetune_voc07``: the reference's recipe (``voc_recipe.VOC07Recipe``: philkr's
  voc-classification as Ren & Lee run it — 80k steps at batch 16, lr 1e-3 halved every
  10k, fc6–fc8 at 10× lr (bias 20×), weight decay 1e-6, clipping at 10, momentum 0.9).
  The AlexNet base + bottleneck is converted to a standard AlexNet
  (``mtsyn_tf.export.convert_to_standard_alexnet``: BN folded, fc6/fc7 dense) and
  Krähenbühl-rescaled on trainval images before fine-tuning (``rescale=False`` skips it)
  — or, for VGG16, the base with global average pooling — plus drop6/drop7 and a 20-way
  ``fc8_cls``, all fine-tuned with per-class sigmoid cross-entropy on random crops and
  mirrors of colour trainval images. Test: the per-class logits summed over views, as the
  reference does, for 1 centre crop and for 10 crops (4 corners + centre of the image
  resized to 256/227·S, and their mirrors; Krähenbühl et al.'s views), both reported.
* ``voc07_svm``: frozen features (``fc7`` by default; any tap, pooled to ≈9k dims),
  L2-normalised, one scikit-learn ``LinearSVC`` per class (Goyal et al. 2019's benchmark).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from mtsyn_tf.evaluation import tfds_sources
from mtsyn_tf.evaluation.domain_gap import pooled_vectors
from mtsyn_tf.evaluation.voc_recipe import VOC07Recipe, apply_recipe_update, lr_multipliers
from mtsyn_tf.metrics import voc_mean_average_precision
from mtsyn_tf.models.preprocessor import as_input_contract

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


def voc_classifier(model, recipe: VOC07Recipe, rescale_images=None, seed: int = 0):
    """(net, rescale report): transferred base → drop6/drop7 → 20-way ``fc8_cls`` logits.

    AlexNet: the standard AlexNet of ``convert_to_standard_alexnet``, Krähenbühl-rescaled
    on ``rescale_images`` first when given (the reference fine-tunes the rescaled
    ``_rs.caffemodel``), with dropout after fc6 and fc7 as in Caffe's AlexNet. VGG16: the
    base with global average pooling (no rescaling: it is defined for the standard AlexNet).
    """
    size = model.image_size
    images = keras.Input((size, size, 3), name="image")
    report = None
    if model.preset["arch"] == "alexnet":
        from mtsyn_tf.export.rescale import standard_alexnet_for_finetuning

        alexnet, report = standard_alexnet_for_finetuning(model, rescale_images, seed=seed)
        x = images
        for layer in alexnet.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            x = layer(x)
            if layer.name in ("fc6_relu", "fc7_relu"):
                x = keras.layers.Dropout(recipe.dropout, name=f"drop{layer.name[2]}")(x)
    else:
        taps = model.backbone(images)
        x = keras.layers.GlobalAveragePooling2D()(taps["conv5_3"])
        x = keras.layers.Dropout(recipe.dropout, name="drop7")(x)
    logits = keras.layers.Dense(
        NUM_CLASSES,
        name="fc8_cls",
        kernel_initializer=keras.initializers.RandomNormal(0.0, recipe.fc8_init_std, seed=seed),
        bias_initializer=keras.initializers.Constant(recipe.fc8_bias_init),
    )(x)
    return keras.Model(images, logits, name="voc_classifier"), report


def masked_sigmoid_loss(y_true, logits):
    """Per-class sigmoid cross-entropy, difficult (0) entries weighted 0."""
    y_true = tf.cast(y_true, tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(y_true > 0, tf.float32), logits)
    weight = tf.cast(tf.not_equal(y_true, 0.0), tf.float32)
    return tf.reduce_sum(ce * weight, axis=-1) / tf.maximum(tf.reduce_sum(weight, axis=-1), 1.0)


CENTER_VIEW = 4  # index of the unmirrored centre crop among evaluation_views(..., "ten")


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
    model, name: str = "voc/2007", data_dir: str | None = None,
    recipe: VOC07Recipe | None = None, steps: int | None = None,
    batch_size: int | None = None, learning_rate: float | None = None,
    rescale: bool = True, rescale_count: int = 64,
    test_crops: str = "ten", grayscale=False, convention: str = "voc07_11point", builder=None, seed: int = 0,
    train_split: str = "train+validation", test_split: str = "test",
) -> dict:  # fmt: skip
    """Fine-tunes the transferred net on trainval and reports test mAP (see module doc).

    Args:
        recipe: the fine-tuning settings; default the reference's ``VOC07Recipe()``.
        steps, batch_size, learning_rate: override those fields of ``recipe`` (smoke runs).
        rescale: Krähenbühl-rescale the converted AlexNet before fine-tuning (default, as
            the reference does); on ``rescale_count`` trainval images (centre squares, the
            fine-tuning input contract).
        grayscale: the fine-tuning input contract (an ``InputContract`` or flag). Default
            colour, as the reference fine-tunes on colour VOC images whatever the
            pretraining input was.
        test_crops: which of the two test-view sets gives the headline ``map``.

    Returns:
        ``map`` (of ``test_crops``), ``map_by_crops`` ({"center", "ten"}: the reference
        reports both),
        the AP convention, the recipe and what rescaling measured.
    """
    from mtsyn_tf.evaluation.features import square_resize

    overrides = {"steps": steps, "batch_size": batch_size, "learning_rate": learning_rate}
    recipe = dataclasses.replace(
        recipe or VOC07Recipe(), **{k: v for k, v in overrides.items() if v is not None}
    ).validate()
    if test_crops not in ("ten", "center"):
        raise ValueError(f"test_crops must be 'ten' or 'center'. Received: {test_crops!r}")
    contract = as_input_contract(grayscale)
    size = model.image_size
    train_images, train_labels = load_voc(name, train_split, data_dir, builder)
    test_images, test_labels = load_voc(name, test_split, data_dir, builder)
    keras.utils.set_random_seed(seed)
    rescale_images = None
    if rescale:
        pick = np.random.default_rng(seed).permutation(len(train_images))[:rescale_count]
        rescale_images = np.asarray(
            contract(np.stack([square_resize(train_images[i], size) for i in pick]))
        )
    net, rescale_report = voc_classifier(model, recipe, rescale_images, seed)
    variables = net.trainable_variables
    multipliers = lr_multipliers(net, recipe)
    optimizer = recipe.optimizer()
    optimizer.build(variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(masked_sigmoid_loss(y, net(x, training=True)))
        grads = tape.gradient(loss, variables)
        apply_recipe_update(optimizer, grads, variables, multipliers, recipe)
        return loss

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
        lambda im, y, s: (tfds_sources.random_crop_flip(im, size, s, contract), y)
    )
    losses = [float(train_step(x, y)) for x, y in ds.batch(recipe.batch_size).take(recipe.steps)]
    scores = {"center": [], "ten": []}
    for image in test_images:
        views = np.asarray(contract(evaluation_views(image, size, "ten")))
        logits = net(views, training=False).numpy()
        # The reference sums fc8 over the views (ranking = ranking of the mean).
        scores["ten"].append(logits.mean(axis=0))
        scores["center"].append(logits[CENTER_VIEW])
    by_crops = {
        k: voc_mean_average_precision(
            np.stack(v), test_labels > 0, test_labels == 0, convention=convention
        )
        for k, v in scores.items()
    }
    return {
        **by_crops[test_crops],
        "map_by_crops": {k: r["map"] for k, r in by_crops.items()},
        "protocol": f"fine-tune (reference VOC07 recipe), {test_crops} crop(s)"
        + (", Krähenbühl-rescaled" if rescale_report is not None else ""),
        "recipe": dataclasses.asdict(recipe),
        "input_contract": contract.record(),
        "rescaled": rescale_report is not None,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "num_train": lengths,
        "num_test": len(test_images),
    }


def svm_features(model, images, tap: str, grayscale: bool, batch_size: int = 16) -> np.ndarray:
    """[N, D] L2-normalised features: standard-AlexNet fc6/fc7 vectors, else pooled taps."""
    from mtsyn_tf.evaluation.features import extract_features, square_resize

    size = model.image_size
    x = np.stack([square_resize(im, size) for im in images])
    if model.preset["arch"] == "alexnet" and tap in ("fc6", "fc7"):
        from mtsyn_tf.export import convert_to_standard_alexnet

        alexnet = convert_to_standard_alexnet(model)
        x = np.asarray(as_input_contract(grayscale)(x))
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
