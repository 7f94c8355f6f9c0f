"""tfds builder for Hypersim, converted to the project's conventions (see convert.py)."""

from __future__ import annotations

import tensorflow_datasets as tfds

from datasets.features import synthetic_features
from datasets.hypersim import convert


class Hypersim(tfds.core.GeneratorBasedBuilder):
    """Hypersim frames with planar depth, OpenCV-frame normals and instance contours."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download Hypersim from https://github.com/apple/ml-hypersim (its download.py fetches
    per-scene zips) and unpack them into `manual_dir`, keeping the upstream layout:
      <manual_dir>/ai_001_001/images/scene_cam_00_final_hdf5/frame.0000.color.hdf5
      <manual_dir>/ai_001_001/images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5
                                                      .../frame.0000.normal_cam.hdf5
                                                      .../frame.0000.semantic_instance.hdf5
    Optionally copy evermotion_dataset/analysis/metadata_images_split_scene_v1.csv from
    the ml-hypersim repository into <manual_dir> to get its train/val/test split
    (without it every frame goes to "train").
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=synthetic_features(),
            homepage="https://github.com/apple/ml-hypersim",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = str(dl_manager.manual_dir)
        splits = convert.split_frames(convert.find_frames(manual_dir), manual_dir)
        return {name: self._generate_examples(frames) for name, frames in splits.items()}

    def _generate_examples(self, frames):
        for frame in frames:
            yield frame.image_id, convert.load_sample(frame)
