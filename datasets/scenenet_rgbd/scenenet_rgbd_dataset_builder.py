"""tfds builder for SceneNet RGB-D, converted to the project's conventions (see convert.py)."""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from datasets.features import synthetic_features
from datasets.scenenet_rgbd import convert


class ScenenetRgbd(tfds.core.GeneratorBasedBuilder):
    """SceneNet RGB-D frames with planar depth, normals from depth and instance contours."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download SceneNet RGB-D (https://robotvault.bitbucket.io/scenenet-rgbd.html): the
    train_N.tar.gz parts and/or val.tar.gz. Unpack them into `manual_dir` so that:
      <manual_dir>/train/<N>/<trajectory>/photo/<frame>.jpg
      <manual_dir>/train/<N>/<trajectory>/depth/<frame>.png
      <manual_dir>/train/<N>/<trajectory>/instance/<frame>.png
    and likewise <manual_dir>/val/... . Splits whose folder is absent are skipped.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=synthetic_features(),
            homepage="https://robotvault.bitbucket.io/scenenet-rgbd.html",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = str(dl_manager.manual_dir)
        present = [s for s in convert.SPLITS if os.path.isdir(os.path.join(manual_dir, s))]
        if not present:
            raise ValueError(
                f"No SceneNet RGB-D split folders {list(convert.SPLITS)} under {manual_dir!r}."
            )
        return {s: self._generate_examples(convert.find_frames(manual_dir, s)) for s in present}

    def _generate_examples(self, frames):
        for frame in frames:
            yield frame.image_id, convert.load_sample(frame)
