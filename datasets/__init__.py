"""Converters and tfds builders for upstream synthetic datasets (Hypersim, SceneNet RGB-D).

Each subpackage has ``convert.py`` (upstream layout → CONTRACTS.md samples, numpy) and a
``*_dataset_builder.py`` tfds GeneratorBasedBuilder reading the user's ``manual_dir``;
``scripts/make_tfrecords.py`` writes the same samples as mtsyn_tf TFRecord shards.
"""
