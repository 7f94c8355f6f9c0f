"""Fast R-CNN (Girshick 2015) on the converted standard AlexNet: VOC07 / VOC12 detection.

The paper's Table 1 "07 DET / 12 DET" columns fine-tune the transferred AlexNet as a Fast
R-CNN detector. Here: conv1–conv5 of ``convert_to_standard_alexnet(model)`` run on the
whole image (shorter side resized to ``scale``, longer side capped at ``max_size``); each
proposal is RoI-max-pooled to 6×6 on conv5 (stride 16); fc6 / fc7 of the converted net
(each followed by dropout 0.5) feed a (C+1)-way softmax and class-specific box
regression trained with smooth-L1 on deltas normalised by (0.1, 0.1, 0.2, 0.2). Each
mini-batch holds ``images_per_batch`` images (flipped at random) with
``rois_per_image`` RoIs each, 25 % foreground (IoU ≥ 0.5 with a non-difficult GT box,
GT boxes included) and the rest background (IoU in [0.1, 0.5)). conv1 stays frozen, as
Fast R-CNN does for its small nets. At test time every proposal is scored, its
class-specific box decoded, and per class boxes with score ≥ 0.05 go through NMS at IoU
0.3 (devkit-style inclusive-pixel IoU); the 100 best detections per image are kept.
Proposals are the released Selective Search boxes (``mtsyn_tf.evaluation.proposals``;
``gt_jitter`` stand-ins only for tests and smoke runs). Defaults follow Girshick 2015 for
VOC07: 40k steps of 2 images × 64 RoIs, learning rate 1e-3 (×0.1 at 30k), scale 600.

Approximated: RoI max-pooling is ``tf.image.crop_and_resize`` of the box (mapped to
conv5 cells) to 12×12 bilinear samples followed by 2×2 max-pooling, instead of Caffe's
exact max over the integer-quantised cells of each 6×6 bin. Boxes map to conv5 through
the exact receptive-field centres of this net (cell m is centred on image pixel
16·m + 17, 0-based), not Caffe's ``round(x / 16)``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mtsyn_tf.evaluation import proposals as props
from mtsyn_tf.evaluation import tfds_sources
from mtsyn_tf.metrics.detection import box_iou, voc_detection_map
from mtsyn_tf.models.preprocessor import as_input_contract

NUM_CLASSES = 20
FEATURE_STRIDE = 16
FEATURE_CENTRE = 17.0  # 0-based image pixel on which conv5 cell 0 is centred
POOLED = 6
BBOX_STDS = np.array([0.1, 0.1, 0.2, 0.2], np.float32)
FG_FRACTION, FG_IOU, BG_IOU_LOW = 0.25, 0.5, 0.1
TEST_SCORE, TEST_NMS, MAX_PER_IMAGE = 0.05, 0.3, 100
MIN_SCALE = 64  # conv1 … pool2 need at least ~35 pixels; keep a margin
SPLITS = {"2007": ("train+validation", "test"), "2012": ("train", "validation")}


def roi_pool(features, boxes, pooled: int = POOLED) -> tf.Tensor:
    """``[R, pooled, pooled, C]`` RoI max-pool of ``features`` ``[1, H, W, C]``.

    ``boxes`` ``[R, 4]`` are 1-based inclusive ``y1 x1 y2 x2`` image pixels. Each box is
    sampled bilinearly at a 2·pooled × 2·pooled grid spanning its conv5 cells (clipped to
    the map) and max-pooled 2×2 (see module doc for the approximation).
    """
    shape = tf.cast(tf.shape(features)[1:3], tf.float32)
    cells = (tf.cast(boxes, tf.float32) - 1.0 - FEATURE_CENTRE) / FEATURE_STRIDE
    limit = tf.concat([shape - 1.0, shape - 1.0], axis=0)
    cells = tf.clip_by_value(cells, 0.0, limit)
    normalised = cells / tf.maximum(limit, 1.0)
    crops = tf.image.crop_and_resize(
        features, normalised, tf.zeros(tf.shape(boxes)[:1], tf.int32), (2 * pooled, 2 * pooled)
    )
    return tf.nn.max_pool2d(crops, 2, 2, "VALID")


class FastRCNN(keras.Model):
    """Conv trunk + RoI pooling + fc6/fc7 head of a converted standard AlexNet."""

    def __init__(self, alexnet: keras.Model, num_classes: int = NUM_CLASSES, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.alexnet = alexnet
        self.dropout = keras.layers.Dropout(0.5)
        self.cls_score = keras.layers.Dense(
            num_classes + 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01)
        )
        self.bbox_pred = keras.layers.Dense(
            4 * (num_classes + 1),
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
        )

    def conv5(self, image):
        x = image
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
            if name in ("conv2", "conv3"):
                x = self.alexnet.get_layer(f"pool{int(name[-1]) - 1}")(x)
            x = tf.nn.relu(self.alexnet.get_layer(name)(x))
        return x

    def call(self, image, rois, training=False):
        """``image`` [1, H, W, 3] in [0, 1], ``rois`` [R, 4] → (logits [R, C+1], deltas)."""
        x = roi_pool(self.conv5(image), rois)
        x = tf.reshape(x, (tf.shape(x)[0], -1))
        for name in ("fc6", "fc7"):
            x = self.dropout(tf.nn.relu(self.alexnet.get_layer(name)(x)), training=training)
        return self.cls_score(x), self.bbox_pred(x)

    def fine_tuned_variables(self):
        frozen = {id(v) for v in self.alexnet.get_layer("conv1").trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in frozen]


def encode_deltas(rois, gt) -> np.ndarray:
    """Girshick's (dy, dx, dh, dw) of ``gt`` relative to ``rois`` (both [N, 4]), normalised."""
    h, w = rois[:, 2] - rois[:, 0] + 1, rois[:, 3] - rois[:, 1] + 1
    gh, gw = gt[:, 2] - gt[:, 0] + 1, gt[:, 3] - gt[:, 1] + 1
    d = np.stack([(gt[:, 0] + 0.5 * gh - rois[:, 0] - 0.5 * h) / h,
                  (gt[:, 1] + 0.5 * gw - rois[:, 1] - 0.5 * w) / w,
                  np.log(gh / h), np.log(gw / w)], axis=1)  # fmt: skip
    return (d / BBOX_STDS).astype(np.float32)


def decode_deltas(rois, deltas) -> np.ndarray:
    """Inverse of ``encode_deltas``: boxes [N, 4] from ``rois`` and normalised deltas."""
    d = deltas * BBOX_STDS
    h, w = rois[:, 2] - rois[:, 0] + 1, rois[:, 3] - rois[:, 1] + 1
    cy, cx = rois[:, 0] + 0.5 * h + d[:, 0] * h, rois[:, 1] + 0.5 * w + d[:, 1] * w
    ph, pw = np.exp(np.minimum(d[:, 2], 4.0)) * h, np.exp(np.minimum(d[:, 3], 4.0)) * w
    return np.stack([cy - 0.5 * ph, cx - 0.5 * pw, cy + 0.5 * ph - 1, cx + 0.5 * pw - 1], axis=1)


def iou_matrix(a, b) -> np.ndarray:
    """``[N, M]`` inclusive-pixel IoU of boxes ``a`` [N, 4] with ``b`` [M, 4]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if not len(b):
        return np.zeros((len(a), 0))
    return np.stack([box_iou(a, box) for box in b], axis=1)


def flip_boxes(boxes, width: int) -> np.ndarray:
    """Mirrors 1-based inclusive boxes in an image ``width`` pixels wide."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([boxes[:, 0], width + 1 - boxes[:, 3], boxes[:, 2], width + 1 - boxes[:, 1]], 1)


def sample_rois(proposals, gt_boxes, gt_labels, num_rois: int, rng):
    """Fast R-CNN mini-batch sampling: (rois, labels 0…C, normalised targets [R, 4])."""
    rois = np.concatenate([gt_boxes, proposals]) if len(gt_boxes) else proposals
    overlaps = iou_matrix(rois, gt_boxes)
    has_gt = overlaps.shape[1] > 0
    best = overlaps.max(axis=1) if has_gt else np.zeros(len(rois))
    assigned = overlaps.argmax(axis=1) if has_gt else np.zeros(len(rois), int)
    fg = np.flatnonzero(best >= FG_IOU)
    bg = np.flatnonzero((best < FG_IOU) & (best >= BG_IOU_LOW))
    if bg.size == 0:
        bg = np.flatnonzero(best < FG_IOU)
    num_fg = min(int(round(FG_FRACTION * num_rois)), fg.size)
    fg = rng.choice(fg, num_fg, replace=False)
    bg = rng.choice(bg, min(num_rois - num_fg, bg.size), replace=False) if bg.size else bg
    keep = np.concatenate([fg, bg]).astype(int)
    labels = np.zeros(len(keep), np.int32)
    labels[:num_fg] = np.asarray(gt_labels)[assigned[fg]] + 1
    targets = np.zeros((len(keep), 4), np.float32)
    if num_fg:
        targets[:num_fg] = encode_deltas(rois[fg], gt_boxes[assigned[fg]])
    return rois[keep].astype(np.float32), labels, targets


def detection_loss(logits, deltas, labels, targets, num_classes: int):
    """Softmax cross-entropy + smooth-L1 (σ = 1) on the labelled class's deltas, λ = 1."""
    cls = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    deltas = tf.reshape(deltas, (-1, num_classes + 1, 4))
    picked = tf.gather(deltas, labels, axis=1, batch_dims=1)
    diff = tf.abs(picked - targets)
    smooth = tf.where(diff < 1.0, 0.5 * diff**2, diff - 0.5)
    fg = tf.cast(labels > 0, tf.float32)[:, None]
    box = tf.reduce_sum(smooth * fg) / tf.cast(tf.maximum(tf.size(labels), 1), tf.float32)
    return cls + box, cls, box


def prepare_image(image, scale: int, max_size: int, grayscale: bool):
    """uint8 [H, W, 3] → (float [1, h, w, 3] in [0, 1], resize factor)."""
    height, width = image.shape[:2]
    factor = min(scale / min(height, width), max_size / max(height, width))
    size = (max(int(round(height * factor)), MIN_SCALE), max(int(round(width * factor)), MIN_SCALE))
    x = tf.image.resize(tf.image.convert_image_dtype(image[..., :3], tf.float32), size)
    x = tf.clip_by_value(x, 0.0, 1.0)
    x = as_input_contract(grayscale)(x)
    return x[None], (size[0] / height, size[1] / width)


def _scale_boxes(boxes, factor):
    fy, fx = factor
    return np.asarray(boxes, np.float64) * [fy, fx, fy, fx]


def nms(boxes, scores, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (inclusive-pixel IoU); indices by decreasing score."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        keep.append(order[0])
        order = order[1:][box_iou(boxes[order[1:]], boxes[order[0]]) <= threshold]
    return np.asarray(keep, int)


def load_detection_split(name, split, data_dir, builder=None, limit=None, gray=False):
    """Per image: dict(image uint8, id, boxes [M, 4] 1-based pixels, labels, difficult)."""
    ds = tfds_sources.load_split(name, split, data_dir, builder)
    out = []
    for ex in ds.take(limit) if limit else ds:
        image = ex["image"].numpy()
        height, width = image.shape[:2]
        objects = ex["objects"]
        boxes = objects["bbox"].numpy().reshape(-1, 4) * [height, width, height, width]
        out.append({
            "image": image, "id": props.image_id(ex["image/filename"].numpy().decode()),
            "boxes": props.clip_boxes(boxes, height, width),
            "labels": objects["label"].numpy().astype(int),
            "difficult": objects["is_difficult"].numpy().astype(bool),
        })  # fmt: skip
    if not out:
        raise ValueError(f"Split {split!r} of {name!r} is empty.")
    return out


def attach_proposals(records, proposals: str, year: str, split: str, rng, max_proposals: int):
    """Adds ``proposals`` [N, 4] to each record (Selective Search files or ``gt_jitter``)."""
    if proposals == props.GT_JITTER:
        for r in records:
            h, w = r["image"].shape[:2]
            r["proposals"] = props.gt_jitter_proposals(r["boxes"], h, w, rng)
        return records
    table = props.load_selective_search(proposals, year, split)
    for r in records:
        if r["id"] not in table:
            raise ValueError(
                f"Image {r['id']!r} of VOC {year} {split} has no Selective Search boxes in "
                f"{props.selective_search_files(year, split)} under {proposals!r}."
            )
        h, w = r["image"].shape[:2]
        r["proposals"] = props.clip_boxes(table[r["id"]][:max_proposals], h, w)
    return records


def train(net, records, steps, images_per_batch, rois_per_image, learning_rate, scale,
          max_size, grayscale, seed) -> list:  # fmt: skip
    """SGD (momentum 0.9, ×0.1 after 3/4 of the steps); per-step [total, cls, box] losses.

    Weight decay 5e-4 is Keras' decoupled form (``w -= lr·wd·w``), not Caffe's L2 term in
    the gradient (which momentum would also accumulate) — close, not identical.
    """
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [max(int(0.75 * steps), 1)], [learning_rate, 0.1 * learning_rate]
    )
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    net(tf.zeros((1, MIN_SCALE, MIN_SCALE, 3)), tf.constant([[1.0, 1.0, 32.0, 32.0]]))  # build

    @tf.function(reduce_retracing=True)
    def gradients(image, rois, labels, targets):
        with tf.GradientTape() as tape:
            logits, deltas = net(image, rois, training=True)
            loss = detection_loss(logits, deltas, labels, targets, net.num_classes)
        return loss, tape.gradient(loss[0], net.fine_tuned_variables())

    history = []
    for _ in range(steps):
        total, sums, used = None, np.zeros(3), 0
        for i in rng.choice(len(records), images_per_batch):
            r = records[i]
            image, factor = prepare_image(r["image"], scale, max_size, grayscale)
            easy = ~r["difficult"]
            gt, proposals = r["boxes"][easy], r["proposals"]
            if rng.random() < 0.5:  # horizontal flip, as Fast R-CNN's training set
                width = r["image"].shape[1]
                image = image[:, :, ::-1]
                gt, proposals = flip_boxes(gt, width), flip_boxes(proposals, width)
            rois, labels, targets = sample_rois(
                _scale_boxes(proposals, factor), _scale_boxes(gt, factor), r["labels"][easy],
                rois_per_image, rng,
            )  # fmt: skip
            if not len(rois):  # no proposal and no non-difficult object: nothing to learn
                continue
            loss, grads = gradients(image, rois, labels, targets)
            sums += [float(v) for v in loss]
            used += 1
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
        if used:
            optimizer.apply([g / used for g in total], net.fine_tuned_variables())
            history.append(sums / used)
    return history


def detect(net, record, scale, max_size, grayscale) -> tuple:
    """(boxes [K, 4] in original pixels, scores [K], labels [K]) for one image."""
    if not len(record["proposals"]):
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)
    image, factor = prepare_image(record["image"], scale, max_size, grayscale)
    rois = _scale_boxes(record["proposals"], factor)
    logits, deltas = net(image, tf.constant(rois, tf.float32), training=False)
    probs = tf.nn.softmax(logits).numpy()
    deltas = deltas.numpy().reshape(len(rois), -1, 4)
    h, w = record["image"].shape[:2]
    out_boxes, out_scores, out_labels = [], [], []
    for c in range(net.num_classes):
        keep = probs[:, c + 1] >= TEST_SCORE
        if not keep.any():
            continue
        boxes = decode_deltas(rois[keep], deltas[keep, c + 1]) / [*factor, *factor]
        boxes = props.clip_boxes(boxes, h, w)
        scores = probs[keep, c + 1]
        chosen = nms(boxes, scores, TEST_NMS)
        out_boxes.append(boxes[chosen])
        out_scores.append(scores[chosen])
        out_labels.append(np.full(len(chosen), c))
    if not out_boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)
    boxes, scores, labels = (np.concatenate(v) for v in (out_boxes, out_scores, out_labels))
    top = np.argsort(-scores, kind="stable")[:MAX_PER_IMAGE]
    return boxes[top], scores[top], labels[top]


def _loss_dict(losses) -> dict:
    return dict(zip(("total", "cls", "box"), (float(v) for v in losses)))


def voc_detection(
    model, year: str = "2007", data_dir: str | None = None, proposals: str | None = None,
    scale: int = 600, max_size: int = 1000, steps: int = 40000, images_per_batch: int = 2,
    rois_per_image: int = 64, learning_rate: float = 1e-3, grayscale=False,
    convention: str = "voc07_11point", builder=None, seed: int = 0,
    max_train: int | None = None, max_test: int | None = None, max_proposals: int = 2000,
    rescale: bool = True, rescale_count: int = 64,
) -> dict:  # fmt: skip
    """Trains Fast R-CNN on VOC ``year``'s train split, returns test mAP (see module doc).

    VOC 2007: trainval → test; VOC 2012: train → validation (tfds ``voc/<year>``).
    ``proposals``: directory of Fast R-CNN's ``selective_search_data`` ``.mat`` files, or
    ``"gt_jitter"`` (tests / smoke runs only). ``rescale``: Krähenbühl-rescale the
    converted AlexNet before fine-tuning (default, SPEC §5) on ``rescale_count`` training
    images (centre squares at the net's input size). ``grayscale``: the fine-tuning input
    contract (``InputContract`` or flag); default colour, as VOC fine-tuning is run.
    """
    if year not in SPLITS:
        raise ValueError(f"year must be one of {sorted(SPLITS)}. Received: year={year!r}")
    if not proposals:
        raise ValueError(
            "Detection needs --proposals: the directory holding Fast R-CNN's "
            f"selective_search_data files {props.selective_search_files(year, SPLITS[year][0])}"
            f" and {props.selective_search_files(year, SPLITS[year][1])}, or "
            f"{props.GT_JITTER!r} for smoke tests."
        )
    if model.preset["arch"] != "alexnet":
        raise ValueError(f"Fast R-CNN runs on the AlexNet arch. Received: {model.preset['arch']!r}")
    if scale < MIN_SCALE or max_size < scale:
        raise ValueError(f"Need {MIN_SCALE} <= scale <= max_size. Received: {scale}, {max_size}")
    name = f"voc/{year}"
    rng = np.random.default_rng(seed)
    train_split, test_split = SPLITS[year]
    if proposals != props.GT_JITTER:  # fail on missing files before any slow work
        props.selective_search_paths(proposals, year, f"{train_split}+{test_split}")
    train_records = load_detection_split(name, train_split, data_dir, builder, max_train)
    test_records = load_detection_split(name, test_split, data_dir, builder, max_test)
    attach_proposals(train_records, proposals, year, train_split, rng, max_proposals)
    attach_proposals(test_records, proposals, year, test_split, rng, max_proposals)
    from mtsyn_tf.evaluation.features import square_resize
    from mtsyn_tf.export.rescale import standard_alexnet_for_finetuning

    keras.utils.set_random_seed(seed)
    rescale_images = None
    if rescale:
        pick = np.random.default_rng(seed).permutation(len(train_records))[:rescale_count]
        squares = [square_resize(train_records[i]["image"], model.image_size) for i in pick]
        rescale_images = np.asarray(as_input_contract(grayscale)(np.stack(squares)))
    alexnet, rescale_report = standard_alexnet_for_finetuning(model, rescale_images, seed)
    net = FastRCNN(alexnet)
    history = train(net, train_records, steps, images_per_batch, rois_per_image, learning_rate,
                    scale, max_size, grayscale, seed)  # fmt: skip
    detections = [detect(net, r, scale, max_size, grayscale) for r in test_records]
    ground_truth = [(r["boxes"], r["labels"], r["difficult"]) for r in test_records]
    result = voc_detection_map(detections, ground_truth, NUM_CLASSES, convention)
    return {
        **result,
        "protocol": f"Fast R-CNN, {name} {train_split} → {test_split}, proposals: "
        + ("gt_jitter (smoke test only)" if proposals == props.GT_JITTER else "Selective Search")
        + (", Krähenbühl-rescaled" if rescale_report is not None else ""),
        "rescaled": rescale_report is not None,
        "num_train": len(train_records), "num_test": len(test_records), "steps": steps,
        "scale": scale, "first_loss": _loss_dict(history[0]) if history else None,
        "final_loss": _loss_dict(history[-1]) if history else None,
        "num_detections": int(sum(len(d[1]) for d in detections)),
    }  # fmt: skip


def detection_sections(r: dict, year: str) -> list:
    """The report sections of one ``voc_detection`` result: mAP, per-class AP, the setup."""
    from tensorflow_datasets.object_detection.voc import _VOC_LABELS

    from mtsyn_tf.evaluation.report import Section, Table

    summary = Table(f"{r['protocol']}; AP convention {r['convention']}", ["", "mAP"],
                    [[f"{len(r['classes_evaluated'])} classes with ground truth", r["map"]]])  # fmt: skip
    per_class = Table("Per-class AP", ["class", "AP", "GT boxes"],
                      [[n, ap, k] for n, ap, k in zip(_VOC_LABELS, r["per_class_ap"],
                                                       r["num_positives"])])  # fmt: skip
    text = (f"VOC {year}: {r['num_train']} training / {r['num_test']} test images, "
            f"{r['steps']} steps, shorter side {r['scale']} px. RoI pooling approximated by "
            "crop_and_resize to 12×12 + 2×2 max-pooling.")  # fmt: skip
    return [Section("Fast R-CNN", text, [summary, per_class])]
