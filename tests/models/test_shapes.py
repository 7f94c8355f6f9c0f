"""Every layer's output shape and weight shape against the SPEC §2 tables.

Each preset is built once per module and one random image is run through the layers one
by one, so the intermediate sizes (pools, deconvs, D1/D2) are checked too; the chained
outputs must equal what ``backbone`` / the heads / D return, so the chain is the real
computation. The paper presets are the real 66M / 44M-parameter networks (batch 1).
"""

import numpy as np
import pytest

from mtsyn_tf.models import build_discriminator, build_multitask_model, get_preset

TASK_CHANNELS = {"normals": 3, "depth": 1, "contour": 1}

# SPEC §2 AlexNet table: layer -> (spatial size, channels).
PAPER_ALEXNET = {
    "conv1": (55, 96),
    "pool1": (27, 96),
    "conv2": (27, 256),
    "pool2": (13, 256),
    "conv3": (13, 384),
    "conv4": (13, 384),
    "conv5": (13, 256),
    "pool5": (13, 256),
    "fc6": (13, 4096),
    "fc7": (13, 4096),
    "d1": (6, 256),
    "d2": (6, 512),
    "d3": (6, 1),
    "deconv8": (27, 64),
    "deconv9": (55, 64),
    "deconv10": (113, 64),
}
# SPEC §2 VGG16 variant: taps, deconvs (output sizes) and D on conv5_3.
PAPER_VGG16 = {
    "conv1_2": (224, 64),
    "conv2_2": (112, 128),
    "conv3_3": (56, 256),
    "conv4_3": (28, 512),
    "conv5_3": (14, 512),
    "deconv1": (28, 512),
    "deconv2": (56, 256),
    "deconv3": (112, 128),
    "deconv4": (224, 64),
    "d1": (6, 1024),
    "d2": (6, 1024),
    "d3": (6, 1),
}


def expected_alexnet(preset):
    """The paper table's sizes with the preset's widths (identical to the table for paper)."""
    w, dw, (d1, d2) = preset["widths"], preset["decoder_width"], preset["disc_widths"]
    channels = {
        "conv1": w["conv1"],
        "pool1": w["conv1"],
        "conv2": w["conv2"],
        "pool2": w["conv2"],
        "conv3": w["conv3"],
        "conv4": w["conv4"],
        "conv5": w["conv5"],
        "pool5": w["conv5"],
        "fc6": w["fc6"],
        "fc7": w["fc7"],
        "d1": d1,
        "d2": d2,
        "d3": 1,
        "deconv8": dw,
        "deconv9": dw,
        "deconv10": dw,
    }
    return {k: (PAPER_ALEXNET[k][0], c) for k, c in channels.items()}


def expected_vgg16(preset):
    w, dws, (d1, d2) = preset["widths"], preset["decoder_widths"], preset["disc_widths"]
    channels = {f"conv{b}_{2 if b < 3 else 3}": w[f"block{b}"] for b in range(1, 6)}
    channels.update({f"deconv{i + 1}": c for i, c in enumerate(dws)})
    channels.update(d1=d1, d2=d2, d3=1)
    return {k: (PAPER_VGG16[k][0], c) for k, c in channels.items()}


def run_alexnet(preset_name):
    model = build_multitask_model(preset_name)
    disc = build_discriminator(preset_name)
    images = np.random.default_rng(0).random((1, 227, 227, 3), dtype=np.float32)
    bb, out = model.backbone, {}
    x = out["conv1"] = bb.conv1(images - 0.5)
    x = out["pool1"] = bb.pool1(x)
    x = out["conv2"] = bb.conv2(x)
    x = out["pool2"] = bb.pool2(x)
    x = out["conv3"] = bb.conv3(x)
    x = out["conv4"] = bb.conv4(x)
    x = out["conv5"] = bb.conv5(x)
    x = out["pool5"] = bb.pool5(x)
    x = out["fc6"] = bb.fc6(x)
    out["fc7"] = bb.fc7(x)
    x = out["d1"] = disc.d1(out["conv5"])
    x = out["d2"] = disc.d2(x)
    out["d3"] = disc.d3(x)
    head = model.heads["normals"]
    x = out["deconv8"] = head.deconv8(out["fc7"])
    x = out["deconv9"] = head.deconv9(x)
    out["deconv10"] = head.deconv10(x)
    out["taps"] = model.backbone(images)
    out["predictions"] = model(images)
    out["normals_chain"] = head.out(out["deconv10"])
    out["disc"] = disc(out["conv5"])
    return model, disc, out


def run_vgg16(preset_name):
    model = build_multitask_model(preset_name)
    disc = build_discriminator(preset_name)
    images = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    taps = model.backbone(images)
    out = dict(taps)
    head = model.heads["normals"]
    x = out["deconv1"] = head.deconvs[0](taps["conv5_3"])
    for i, skip in enumerate(("conv4_3", "conv3_3", "conv2_2")):
        x = out[f"deconv{i + 2}"] = head.deconvs[i + 1](head.concats[i]([x, taps[skip]]))
    out["normals_chain"] = head.out(x)
    x = out["d1"] = disc.d1(taps["conv5_3"])
    x = out["d2"] = disc.d2(x)
    out["d3"] = disc.d3(x)
    out["disc"] = disc(taps["conv5_3"])
    out["predictions"] = model(images)
    return model, disc, out


@pytest.fixture(scope="module", params=["paper_alexnet", "small"])
def alexnet(request):
    return (request.param, *run_alexnet(request.param))


@pytest.fixture(scope="module", params=["paper_vgg16", "small_vgg16"])
def vgg16(request):
    return (request.param, *run_vgg16(request.param))


def assert_table(outputs, table):
    got = {k: tuple(outputs[k].shape) for k in table}
    want = {k: (1, s, s, c) for k, (s, c) in table.items()}
    assert got == want


# ------------------------------------------------------------------ AlexNet
def test_paper_alexnet_preset_is_the_spec_table():
    assert expected_alexnet(get_preset("paper_alexnet")) == PAPER_ALEXNET


def test_alexnet_layer_shapes(alexnet):
    name, _, _, out = alexnet
    assert_table(out, expected_alexnet(get_preset(name)))


def test_alexnet_chain_is_the_model_computation(alexnet):
    _, _, _, out = alexnet
    for tap, value in out["taps"].items():
        np.testing.assert_allclose(value, out[tap], rtol=1e-5, atol=1e-5, err_msg=tap)
    np.testing.assert_allclose(out["predictions"]["normals"], out["normals_chain"], atol=1e-5)
    np.testing.assert_allclose(out["disc"], out["d3"], atol=1e-5)


def test_alexnet_outputs_are_full_size_with_task_channels(alexnet):
    _, _, _, out = alexnet
    got = {t: tuple(v.shape) for t, v in out["predictions"].items()}
    assert got == {t: (1, 227, 227, c) for t, c in TASK_CHANNELS.items()}


def test_alexnet_weight_shapes(alexnet):
    name, model, disc, _ = alexnet
    p = get_preset(name)
    w, dw, (d1, d2) = p["widths"], p["decoder_width"], p["disc_widths"]
    bb = model.backbone
    assert tuple(bb.conv1.conv.kernel.shape) == (11, 11, 3, w["conv1"])
    assert tuple(bb.conv2.conv.kernel.shape) == (5, 5, w["conv1"], w["conv2"])
    assert tuple(bb.conv5.conv.kernel.shape) == (3, 3, w["conv4"], w["conv5"])
    assert tuple(bb.fc6.conv.kernel.shape) == (6, 6, w["conv5"], w["fc6"])
    assert bb.fc6.conv.dilation_rate == (2, 2)
    assert tuple(bb.fc7.conv.kernel.shape) == (1, 1, w["fc6"], w["fc7"])
    head = model.heads["depth"]
    # Conv2DTranspose kernels are (k, k, out, in).
    assert tuple(head.deconv8.conv.kernel.shape) == (3, 3, dw, w["fc7"])
    assert tuple(head.deconv10.conv.kernel.shape) == (5, 5, dw, dw)
    assert tuple(head.out.kernel.shape) == (3, 3, 1, dw)
    assert tuple(disc.d1.conv.kernel.shape) == (3, 3, w["conv5"], d1)
    assert tuple(disc.d3.kernel.shape) == (1, 1, d2, 1)


def conv_bn(k, cin, cout):
    """(total, non-trainable) weights of a bias-free conv + BN (γ, β, moving mean/var)."""
    return k * k * cin * cout + 4 * cout, 2 * cout


def sum_counts(parts):
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def test_alexnet_parameter_counts(alexnet):
    name, model, disc, _ = alexnet
    p = get_preset(name)
    w, dw, (d1, d2) = p["widths"], p["decoder_width"], p["disc_widths"]
    parts = [
        conv_bn(11, 3, w["conv1"]),
        conv_bn(5, w["conv1"], w["conv2"]),
        conv_bn(3, w["conv2"], w["conv3"]),
        conv_bn(3, w["conv3"], w["conv4"]),
        conv_bn(3, w["conv4"], w["conv5"]),
        conv_bn(6, w["conv5"], w["fc6"]),
        conv_bn(1, w["fc6"], w["fc7"]),
    ]
    for channels in TASK_CHANNELS.values():
        parts += [conv_bn(3, w["fc7"], dw), conv_bn(3, dw, dw), conv_bn(5, dw, dw)]
        parts.append((9 * dw * channels + channels, 0))  # output deconv with bias
    total, frozen = sum_counts(parts)
    assert model.count_params() == total
    assert sum(int(np.prod(v.shape)) for v in model.non_trainable_weights) == frozen
    d_total, _ = sum_counts([conv_bn(3, w["conv5"], d1), conv_bn(1, d1, d2), (d2 + 1, 0)])
    assert disc.count_params() == d_total
    if name == "paper_alexnet":
        assert 65e6 < total < 67e6  # "~66M"


# ------------------------------------------------------------------ VGG16
def test_paper_vgg16_preset_is_the_spec_table():
    assert expected_vgg16(get_preset("paper_vgg16")) == PAPER_VGG16


def test_vgg16_layer_shapes(vgg16):
    name, _, _, out = vgg16
    assert_table(out, expected_vgg16(get_preset(name)))


def test_vgg16_chain_is_the_model_computation(vgg16):
    _, _, _, out = vgg16
    np.testing.assert_allclose(out["predictions"]["normals"], out["normals_chain"], atol=1e-5)
    np.testing.assert_allclose(out["disc"], out["d3"], atol=1e-5)
    got = {t: tuple(v.shape) for t, v in out["predictions"].items()}
    assert got == {t: (1, 224, 224, c) for t, c in TASK_CHANNELS.items()}


def test_vgg16_parameter_counts(vgg16):
    name, model, disc, _ = vgg16
    p = get_preset(name)
    w, dws, (d1, d2) = p["widths"], p["decoder_widths"], p["disc_widths"]
    parts, cin = [], 3
    for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
        for _ in range(count):
            parts.append(conv_bn(3, cin, w[f"block{block}"]))
            cin = w[f"block{block}"]
    # Deconv i takes the previous deconv concatenated with its skip (4×4 kernels).
    deconv_inputs = (w["block5"], dws[0] + w["block4"], dws[1] + w["block3"], dws[2] + w["block2"])
    for channels in TASK_CHANNELS.values():
        parts += [conv_bn(4, cin_i, cout) for cin_i, cout in zip(deconv_inputs, dws)]
        parts.append((9 * dws[3] * channels + channels, 0))
    total, frozen = sum_counts(parts)
    assert model.count_params() == total
    assert sum(int(np.prod(v.shape)) for v in model.non_trainable_weights) == frozen
    d_total, _ = sum_counts([conv_bn(4, w["block5"], d1), conv_bn(1, d1, d2), (d2 + 1, 0)])
    assert disc.count_params() == d_total


# ------------------------------------------------------------------ DA taps
@pytest.mark.parametrize("tap, size", [("conv1", 27), ("conv4", 6), ("conv5", 6), ("fc6", 6)])
def test_discriminator_patch_grid_for_each_alexnet_tap(tap, size):
    model = build_multitask_model("small")
    disc = build_discriminator("small", da_tap=tap)
    images = np.random.default_rng(1).random((2, 227, 227, 3), dtype=np.float32)
    taps = model.backbone(images, up_to=tap)
    assert list(taps)[-1] == tap  # stops at the tap
    assert tuple(disc(taps[tap]).shape) == (2, size, size, 1)
