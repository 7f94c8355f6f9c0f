"""Transfer and evaluation protocols (SPEC §5) and their reports.

``registry`` is the table of protocols (``EVALUATORS``: name → ``Evaluator`` class) and
``evaluate()``, which ``scripts/evaluate.py`` and the demo call. Each protocol is one
module under ``evaluators/`` (typed settings + results and report sections) over its
library here: ``linear_probe`` (frozen conv1..conv5, ≈9k-dim pooled features, tfds
classification sets), ``voc_classification`` (VOC07 fine-tune and frozen-feature SVMs),
``fast_rcnn`` (VOC detection), ``nyud_normals`` (NYU Depth v2 normals, reader in
``nyud``), ``offline`` with ``qualitative`` (filters, nearest neighbours, prediction
sheets), ``motorcycle`` (metric depth on Middlebury's motorcycle from scikit-image) and
``domain_gap`` (proxy A-distance), ``multitask_summary`` (Δ_MTL); ``report`` writes
md/html/json. Import the module you need; this package does not import TensorFlow-heavy
modules eagerly.
"""
