"""Tiny tfds datasets written by the tests in tfds' own on-disk format (no network)."""

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.object_detection.voc import Voc

STRIPE_CLASSES = ("horizontal", "vertical", "flat")


def stripes_image(label: int, rng, size: int = 32) -> np.ndarray:
    """Class 0 horizontal stripes, 1 vertical stripes, 2 flat noise: a learnable cue."""
    base = rng.uniform(0.2, 0.8)
    period = rng.integers(4, 7)
    idx = np.arange(size)
    wave = 0.25 * np.sign(np.sin(2 * np.pi * idx / period))
    image = np.full((size, size), base)
    if label == 0:
        image = image + wave[:, None]
    elif label == 1:
        image = image + wave[None, :]
    image = image + rng.normal(0, 0.05, (size, size))
    rgb = np.repeat(image[..., None], 3, axis=-1) * rng.uniform(0.8, 1.0, 3)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


class TinyStripes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """An image-classification set with the ``image``/``label`` layout of imagenet2012."""

    VERSION = tfds.core.Version("1.0.0")
    NUM_TRAIN = 36
    NUM_TEST = 18

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=STRIPE_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(self.NUM_TRAIN, seed=0),
            "validation": self._generate_examples(self.NUM_TEST, seed=1),
        }

    def _generate_examples(self, num, seed):
        rng = np.random.default_rng(seed)
        for i in range(num):
            label = i % len(STRIPE_CLASSES)
            yield i, {"image": stripes_image(label, rng), "label": label}


def prepared(builder_cls, data_dir):
    builder = builder_cls(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(data_dir))
    )
    return builder


def _voc_palette():
    rng = np.random.default_rng(123)
    return rng.integers(0, 256, (20, 3))


class TinyVoc(Voc, skip_registration=True):
    """tfds' own VOC builder (same features, on-disk format) with tiny generated splits.

    Image i of a split shows class ``i % 20`` as its colour (learnable); every fifth image
    also holds a *difficult* object of the next class (devkit label 0 there).
    """

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(20, seed=0),
            "validation": self._generate_examples(20, seed=1),
            "test": self._generate_examples(20, seed=2),
        }

    def _generate_examples(self, num, seed):
        rng = np.random.default_rng(seed)
        palette = _voc_palette()
        for i in range(num):
            c = i % 20
            image = np.clip(palette[c] + rng.normal(0, 8, (40, 48, 3)), 0, 255).astype(np.uint8)
            objects = [{"label": c, "bbox": tfds.features.BBox(0.1, 0.1, 0.9, 0.9), "pose": 0,
                        "is_truncated": False, "is_difficult": False}]  # fmt: skip
            if i % 5 == 0:
                objects.append({**objects[0], "label": (c + 1) % 20, "is_difficult": True})
            labels = sorted({o["label"] for o in objects})
            easy = sorted({o["label"] for o in objects if not o["is_difficult"]})
            yield i, {"image": image, "image/filename": f"{seed}_{i}.jpg", "objects": objects,
                      "labels": labels, "labels_no_difficult": easy}  # fmt: skip
