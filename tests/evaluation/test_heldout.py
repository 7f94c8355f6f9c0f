"""``heldout_synthetic``: the trainer's held-out metrics, checked against the numpy references."""

import numpy as np
import pytest

from mtsyn_tf.data import pipeline
from mtsyn_tf.data.writer import write_dataset
from mtsyn_tf.evaluation.evaluator import EvalRun
from mtsyn_tf.evaluation.registry import evaluate
from mtsyn_tf.metrics import ContourProxyAccumulator, DepthAccumulator, NormalAccumulator
from mtsyn_tf.models.preprocessor import InputContract
from tests.data.conftest import make_synthetic_sample

# As tests/metrics/test_keras_metrics.py: the streaming metrics hold float32 per-pixel terms
# summed in float64 (relative error ~1e-7 of the float64 numpy reference), and their median
# is a 0.1-degree histogram's (within half a bin of the exact one).
TOLERANCE = {"normals_median": 0.05 + 1e-4}


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    samples = [make_synthetic_sample(48, 64, seed=i, image_id=f"s{i}") for i in range(7)]
    write_dataset(samples, str(out), "test", 1, "synthetic", "fixture", grid_rows=0)
    return str(out)


def _zero_as_90_degrees(pred, gt):
    """keras_metrics scores a zero normal prediction as 90° (its documented rule; a random
    init can output exact zeros where a ReLU map is dead), the numpy reference refuses it:
    such pixels get a unit vector orthogonal to the ground truth."""
    zero = ~np.any(pred != 0, axis=-1, keepdims=True)
    axis = np.where(np.abs(gt[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    ortho = np.cross(gt, axis)
    ortho /= np.maximum(np.linalg.norm(ortho, axis=-1, keepdims=True), 1e-12)
    return np.where(zero, ortho, pred)


def _reference(model, contract, synthetic_dir, batch_size):
    """The same predictions scored by the numpy accumulators over the whole split."""
    depth, normals = DepthAccumulator(), NormalAccumulator(exact_median=True)
    contour = ContourProxyAccumulator()
    ds = pipeline.make_eval_dataset(synthetic_dir, "test", batch_size, model.image_size)
    for batch in ds:
        pred = {
            k: np.asarray(v) for k, v in model.predict_physical(contract(batch["image"])).items()
        }
        valid = np.asarray(batch["valid"]) > 0
        depth.update(pred["depth"], np.asarray(batch["depth"]), valid)
        gt_normals = np.asarray(batch["normals"])
        normals.update(_zero_as_90_degrees(pred["normals"], gt_normals), gt_normals, valid[..., 0])
        contour.update(pred["contour"], np.asarray(batch["contour"]))
    out = {f"depth_{k}": depth.result()[k] for k in ("abs_rel", "rmse", "delta1")}
    out.update({f"normals_{k}": normals.result()[k]
                for k in ("mean", "median", "pct_11_25", "pct_22_5", "pct_30")})  # fmt: skip
    out.update({f"contour_{k}": contour.result()[k] for k in ("f_0_5", "ap")})
    return out


def test_heldout_metrics_match_the_numpy_references(small_model, synthetic_dir):
    # A grey-trained run: the evaluator must feed the model through the run's contract.
    grey = InputContract("grayscale")
    target = EvalRun(model=small_model, input_contract=grey)
    results, sections = evaluate(target, ["heldout_synthetic"], synthetic_dir=synthetic_dir,
                                 batch_size=3)  # fmt: skip
    got = results["heldout_synthetic"]
    assert got["num_images"] == 7  # batches of 3, 3 and 1: the partial batch counts
    expected = _reference(small_model, grey, synthetic_dir, batch_size=3)
    assert set(got) - {"num_images"} == set(expected)
    for key, value in expected.items():
        tol = TOLERANCE.get(key, 1e-5 * max(1.0, abs(value)))
        assert got[key] == pytest.approx(value, abs=tol), key
    assert len(sections[0].tables[0].rows) == len(expected)


def test_heldout_needs_shards_and_a_split_with_records(small_model, synthetic_dir):
    with pytest.raises(ValueError, match="needs synthetic_dir"):
        evaluate(small_model, "heldout_synthetic")
    with pytest.raises(ValueError, match="val"):
        evaluate(small_model, "heldout_synthetic", synthetic_dir=synthetic_dir, split="val")
