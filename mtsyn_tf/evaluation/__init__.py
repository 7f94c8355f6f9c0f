"""Transfer and evaluation protocols (SPEC §5) and the offline report.

Modules, one protocol each: ``linear_probe`` (frozen conv1..conv5, ≈9k-dim pooled
features, tfds classification sets), ``voc_classification`` (VOC07 fine-tune and
frozen-feature SVMs), ``nyud_normals`` (NYU Depth v2 normals, reader in ``nyud``),
``qualitative`` (filters, nearest neighbours, prediction sheets), ``motorcycle``
(metric depth on Middlebury's motorcycle from scikit-image), ``domain_gap`` (proxy
A-distance), ``multitask_summary`` (Δ_MTL), ``report`` (md/html/json), ``offline``
(``offline_report``: everything that needs no download) and ``protocols``
(``run_protocol``, used by ``scripts/evaluate.py``). Import the module you need; this
package does not import TensorFlow-heavy modules eagerly.
"""

PROTOCOL_MODULES = (
    "linear_probe",
    "voc_classification",
    "nyud_normals",
    "qualitative",
    "motorcycle",
    "domain_gap",
    "multitask_summary",
    "report",
    "offline",
    "protocols",
)
