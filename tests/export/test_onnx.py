"""ONNX exports against TensorFlow: predictor and base taps, names, opset, dynamic batch."""

import numpy as np
import onnx
import pytest

from mtsyn_tf.export.onnx_export import (
    ONNX_OPSET,
    OnnxRunner,
    export_onnx_base,
    export_onnx_predictor,
)
from mtsyn_tf.models.presets import ALEXNET_TAPS


@pytest.fixture(scope="module")
def onnx_paths(small_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "predictor": export_onnx_predictor(small_model, str(folder / "predictor.onnx")),
        "base": export_onnx_base(small_model, str(folder / "base.onnx")),
    }


def test_names_opset_and_symbolic_batch(onnx_paths):
    for kind, outputs in (
        ("predictor", {"depth", "normals", "contour"}),
        ("base", set(ALEXNET_TAPS)),
    ):
        proto = onnx.load(onnx_paths[kind])
        assert (
            max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == ONNX_OPSET
        )
        assert [i.name for i in proto.graph.input] == ["image"]
        assert {o.name for o in proto.graph.output} == outputs
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [227, 227, 3]


def test_predictor_matches_tf_on_random_and_real_images(small_model, onnx_paths, images):
    runner = OnnxRunner(onnx_paths["predictor"])
    for batch in (images[:1], images):  # batch 1 and 3: the batch axis is dynamic
        expected = small_model.predict_physical(batch)
        got = runner(batch)
        for key in ("depth", "normals", "contour"):
            assert got[key].shape == tuple(expected[key].shape)
            np.testing.assert_allclose(got[key], expected[key].numpy(), atol=1e-4, rtol=0)


def test_base_taps_match_tf(small_model, onnx_paths, images):
    expected = small_model.backbone(images, training=False)
    got = OnnxRunner(onnx_paths["base"])(images)
    for tap in ALEXNET_TAPS:
        np.testing.assert_allclose(got[tap], expected[tap].numpy(), atol=1e-4, rtol=0)
