"""Data layer: on-disk schema, shards, augmentations, real-photo domains, input pipelines.

Modules (import them directly; nothing heavy is imported here):

* ``schema``: tf.train.Example encode/validate (numpy) and decode (TF ops).
* ``shards``: sharded TFRecord writing with manifest.json; listing and verification.
* ``writer``: samples → shards + manifest + sample grid in one call.
* ``augment``: seeded, geometry-consistent crop/flip/jitter/grayscale over tensor dicts.
* ``real_domain``: the real-photo stream (embedded, folder, shards, places365).
* ``pipeline``: ``make_training_dataset`` / ``make_eval_dataset``.
* ``sample_grid``: PNG contact sheet RGB | depth | normals | contours.
"""
