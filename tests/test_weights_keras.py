"""Keras HDF5 weights without TensorFlow: layouts, mapping, error messages, BN momentum.

The files are written here with h5py in the layouts Keras 2 writes (``model.save`` full saves with
``model_weights/<layer>/<layer>/kernel:0``, weights-only saves with top-level layer groups, both with
``layer_names``/``weight_names`` attributes) and Keras 3's ``.weights.h5``, from a randomised
lgenet module, so that a load can be compared tensor by tensor. Agreement with Keras itself is
``test_keras_parity.py``.
"""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest
import torch

from lgenet.errors import WeightsError
from lgenet.models import build_model, create_backbone, rebuild_model
from lgenet.models.keras_h5 import build_keras_layout, detect_keras_arch, load_keras_backbone, read_keras_weights
from lgenet.models.keras_inception import BatchNorm2dNoScale, KerasInceptionV3
from lgenet.models.keras_resnet import (
    KerasResNet50,
    keras_resnet50_slots,
    keras_resnet50_topological_order,
    legacy_resnet50_name,
)


# ------------------------------------------------------------------------------------------ helpers
def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN statistics/affine and conv biases, so that a wrong mapping cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
                if isinstance(m.weight, torch.nn.Parameter):
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return module


def keras_layers_of(
    module: torch.nn.Module, arch: str, offset: int = 0
) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """[(keras layer name, [(weight name, array)])] in Keras' variable order, from a Keras-layout module."""
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}

    def conv(prefix):
        ws = [("kernel", sd[f"{prefix}.weight"].transpose(2, 3, 1, 0))]
        return ws + ([("bias", sd[f"{prefix}.bias"])] if f"{prefix}.bias" in sd else [])

    def bn(prefix):
        ws = [("gamma", sd[f"{prefix}.weight"])] if f"{prefix}.weight" in sd else []
        return ws + [
            ("beta", sd[f"{prefix}.bias"]),
            ("moving_mean", sd[f"{prefix}.running_mean"]),
            ("moving_variance", sd[f"{prefix}.running_var"]),
        ]

    if arch == "resnet50":
        by_name = {k: (kind, p) for k, kind, p in keras_resnet50_slots()}
        return [
            (k, conv(by_name[k][1]) if by_name[k][0] == "conv" else bn(by_name[k][1]))
            for k in keras_resnet50_topological_order()
        ]
    out = []
    for i, (c, b) in enumerate(module.conv_bn_modules()):
        n = i + offset
        out.append((f"conv2d_{n}" if n else "conv2d", conv(c)))
        out.append((f"batch_normalization_{n}" if n else "batch_normalization", bn(b)))
    return out


def _strs(names: list[str], fixed: bool):
    if fixed:  # older h5py/Keras wrote fixed-length byte strings
        return np.array([n.encode("utf-8") for n in names]) if names else np.array([], dtype="S1")
    return np.array(names, dtype=h5py.string_dtype()) if names else np.array([], dtype=np.float64)


def write_keras2_h5(
    path,
    layers,
    layout: str = "full",
    suffix: str = ":0",
    fixed: bool = False,
    extra_layer_names: tuple[str, ...] = ("input_1", "conv1_pad"),
):
    """Write ``layers`` in the Keras 2 HDF5 layout (``full`` = model.save, ``weights`` = save_weights)."""
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.9.0"
        if layout == "full":
            f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {}})
            root = f.create_group("model_weights")
            root.attrs["backend"] = "tensorflow"
            root.attrs["keras_version"] = "2.9.0"
        else:
            root = f
        names = list(extra_layer_names) + [n for n, _ in layers]
        root.attrs["layer_names"] = _strs(names, fixed)
        weights = dict(layers)
        for n in names:
            g = root.create_group(n)
            ws = weights.get(n, [])
            g.attrs["weight_names"] = _strs([f"{n}/{w}{suffix}" for w, _ in ws], fixed)
            for w, a in ws:
                g.create_dataset(f"{n}/{w}{suffix}", data=a)
    return path


def write_keras3_weights_h5(target, layers):
    """Keras 3 ``save_weights('x.weights.h5')`` layout: layers/<object>/vars/<i>, name attribute."""
    with h5py.File(target, "w") as f:
        lg = f.create_group("layers")
        f.create_group("vars")
        for i, (n, ws) in enumerate(layers):
            v = lg.create_group(f"obj_{i}").create_group("vars")
            v.attrs["name"] = n
            for j, (_, a) in enumerate(ws):
                v.create_dataset(str(j), data=a)
    return target


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def r50():
    return randomise(KerasResNet50(), 1).eval()


@pytest.fixture(scope="module")
def inc():
    return randomise(KerasInceptionV3(), 2).eval()


@pytest.fixture(scope="module")
def r50_file(tmp_path_factory, r50):
    return write_keras2_h5(
        tmp_path_factory.mktemp("k") / "RadImageNet-ResNet50_notop.h5", keras_layers_of(r50, "resnet50")
    )


@pytest.fixture(scope="module")
def inc_file(tmp_path_factory, inc):
    layers = keras_layers_of(inc, "inception_v3", offset=94)
    rng = np.random.default_rng(0)
    layers = [layers[i] for i in rng.permutation(len(layers))]  # file order is not construction order
    return write_keras2_h5(
        tmp_path_factory.mktemp("k") / "RadImageNet-InceptionV3_notop.h5",
        layers,
        extra_layer_names=("input_1", "mixed0", "average_pooling2d"),
    )


# ------------------------------------------------------------------------------------------ structure
def test_resnet50_is_keras_v1():
    m = build_keras_layout("resnet50")
    assert m.lgenet_layout == "keras" and m.lgenet_target_layer == "layer4"
    for stage in (m.layer2, m.layer3, m.layer4):
        blk = stage[0]
        assert blk.conv1.stride == (2, 2) and blk.conv2.stride == (1, 1)  # v1: stride on the first 1x1
        assert blk.downsample[0].stride == (2, 2)
    assert m.layer1[0].conv1.stride == (1, 1)
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]
    assert len(convs) == 53 and all(c.bias is not None for c in convs)
    assert len(bns) == 53 and all(b.eps == pytest.approx(1.001e-5) and b.momentum == 0.1 for b in bns)
    assert m.forward_features(torch.zeros(1, 3, 224, 224)).shape == (1, 2048, 7, 7)


def test_inception_v3_is_keras():
    m = build_keras_layout("inception_v3")
    assert m.lgenet_layout == "keras" and m.lgenet_target_layer == "Mixed_7c"
    assert len(m.conv_bn_modules()) == 94
    bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]
    assert len(bns) == 94 and all(
        isinstance(b, BatchNorm2dNoScale) and b.eps == 1e-3 and b.momentum == 0.1 for b in bns
    )
    assert not any(n.endswith("bn.weight") for n, _ in m.named_parameters())  # no gamma to train
    assert all(c.bias is None for c in m.modules() if isinstance(c, torch.nn.Conv2d))
    pools = [x for x in m.modules() if isinstance(x, torch.nn.AvgPool2d)]
    assert len(pools) == 9 and all(p.count_include_pad is False for p in pools)
    m.eval()
    assert m.forward_features(torch.zeros(1, 3, 299, 299)).shape == (1, 2048, 8, 8)


def test_keras_same_avg_pool_excludes_padding():
    pool = build_keras_layout("inception_v3").Mixed_5b.pool
    y = pool(torch.ones(1, 1, 5, 5))
    assert torch.allclose(y, torch.ones_like(y))  # a corner averages 4 real pixels, not 4/9


# ------------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize("layout,suffix,fixed", [("full", ":0", False), ("weights", ":0", True), ("full", "", False)])
def test_resnet50_layouts_load_exactly(tmp_path, r50, layout, suffix, fixed):
    f = write_keras2_h5(tmp_path / "r.h5", keras_layers_of(r50, "resnet50"), layout, suffix, fixed)
    m, info = load_keras_backbone("resnet50", f, init="radimagenet")
    same_state(m, r50)
    assert info.format == "keras-h5" and info.norm == "keras_caffe" and info.n_loaded == 318
    assert info.fixups[0].startswith(f"read Keras layout keras2-{layout}")
    assert len(info.file_sha256) == 64


def test_inception_construction_order_and_offset(inc_file, inc):
    kf = read_keras_weights(inc_file)
    assert detect_keras_arch(kf)[0] == "inception_v3"
    m, info = load_keras_backbone("inception_v3", inc_file)
    same_state(m, inc)
    assert any("conv2d_94" in f for f in info.fixups)
    x = torch.randn(1, 3, 299, 299)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m.forward_features(x), inc.forward_features(x))


def test_keras3_weights_layout_and_dot_keras_zip(tmp_path, r50):
    f = write_keras3_weights_h5(tmp_path / "r.weights.h5", keras_layers_of(r50, "resnet50"))
    m, info = load_keras_backbone("resnet50", f)
    same_state(m, r50)
    assert "keras3-weights" in info.fixups[0]
    z = tmp_path / "r.keras"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.write(f, "model.weights.h5")
    same_state(create_backbone("resnet50", init="radimagenet", weights_file=z), r50)


def test_nested_submodel_full_save(tmp_path, r50):
    """Sequential([ResNet50(include_top=False), Flatten, Dense]) saved whole: the base is one group."""
    layers = keras_layers_of(r50, "resnet50")
    with h5py.File(tmp_path / "ft.h5", "w") as f:
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = _strs(["resnet50", "flatten", "dense"], False)
        g = root.create_group("resnet50")
        g.attrs["weight_names"] = _strs([f"{n}/{w}:0" for n, ws in layers for w, _ in ws], False)
        for n, ws in layers:
            for w, a in ws:
                g.create_dataset(f"{n}/{w}:0", data=a)
        root.create_group("flatten").attrs["weight_names"] = _strs([], False)
        d = root.create_group("dense")
        d.attrs["weight_names"] = _strs(["dense/kernel:0", "dense/bias:0"], False)
        d.create_dataset("dense/kernel:0", data=np.zeros((100352, 1), "f4"))
        d.create_dataset("dense/bias:0", data=np.zeros((1,), "f4"))
    m, info = load_keras_backbone("resnet50", tmp_path / "ft.h5")
    same_state(m, r50)
    assert info.dropped == ["/model_weights/dense/dense/kernel:0", "/model_weights/dense/dense/bias:0"]
    assert any("classifier" in f for f in info.fixups)


def test_older_keras_applications_resnet_names(tmp_path, r50):
    assert [
        legacy_resnet50_name(n)
        for n in ("conv1_conv", "conv1_bn", "conv2_block1_0_conv", "conv3_block2_1_bn", "conv4_block6_3_conv")
    ] == ["conv1", "bn_conv1", "res2a_branch1", "bn3b_branch2a", "res4f_branch2c"]
    layers = [(legacy_resnet50_name(n), ws) for n, ws in keras_layers_of(r50, "resnet50")]
    layers = [layers[i] for i in np.random.default_rng(1).permutation(len(layers))]  # by name, not order
    f = write_keras2_h5(tmp_path / "old.h5", layers, layout="weights")
    assert detect_keras_arch(read_keras_weights(f))[0] == "resnet50"
    m, info = load_keras_backbone("resnet50", f)
    same_state(m, r50)
    assert any("older keras-applications" in s for s in info.fixups)


def test_unknown_resnet_names_mapped_by_order(tmp_path, r50):
    layers = keras_layers_of(r50, "resnet50")
    renamed = [(f"legacy_{i}", ws) for i, (_, ws) in enumerate(layers)]
    f = write_keras2_h5(tmp_path / "old.h5", renamed, layout="weights")
    m, info = load_keras_backbone("resnet50", f)
    same_state(m, r50)
    assert any("paired by file order" in s for s in info.fixups)


def test_create_backbone_and_rebuild_keep_keras_layout(r50_file, r50):
    bb = create_backbone("resnet50", init="radimagenet", weights_file=r50_file)
    assert isinstance(bb, KerasResNet50) and bb.lgenet_layout == "keras" and bb.lgenet_target_layer == "layer4"
    assert bb.input_norm.name == "keras_caffe" and bb.input_norm.channel_order == "BGR"
    assert bb.weights_info.format == "keras-h5" and bb.weights_info.norm == "keras_caffe"
    model = build_model("resnet50", "radimagenet", r50_file, image_size=64, head="gap")
    assert model.spec.layout == "keras" and model.spec.norm == "keras_caffe"
    again = rebuild_model(model.spec.to_dict(), model.state_dict())
    assert isinstance(again.backbone, KerasResNet50)
    model.eval(), again.eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


# ------------------------------------------------------------------------------------------ errors
def test_wrong_architecture(r50_file, inc_file):
    with pytest.raises(WeightsError, match=r"holds Keras resnet50 weights.*backbone is 'inception_v3'"):
        create_backbone("inception_v3", init="radimagenet", weights_file=r50_file)
    with pytest.raises(WeightsError, match=r"holds Keras inception_v3 weights.*backbone is 'resnet50'"):
        create_backbone("resnet50", init="radimagenet", weights_file=inc_file)
    with pytest.raises(WeightsError, match="reads Keras weights for"):
        load_keras_backbone("tiny", r50_file)


def test_truncated_file(tmp_path, r50_file):
    cut = tmp_path / "cut.h5"
    cut.write_bytes(r50_file.read_bytes()[:3_000_000])
    with pytest.raises(WeightsError, match=r"truncated or corrupt"):
        create_backbone("resnet50", init="radimagenet", weights_file=cut)


def test_not_keras_and_not_hdf5(tmp_path):
    f = tmp_path / "data.h5"
    with h5py.File(f, "w") as h:
        h["images"] = np.zeros((2, 4, 4))
    with pytest.raises(WeightsError, match=r"HDF5 file but not a Keras weights file.*images"):
        create_backbone("resnet50", init="radimagenet", weights_file=f)
    t = tmp_path / "notes.h5"
    t.write_text("not hdf5")
    with pytest.raises(WeightsError, match="not an HDF5 file"):
        create_backbone("resnet50", init="radimagenet", weights_file=t)


def test_missing_layer_is_named(tmp_path, r50):
    layers = [lw for lw in keras_layers_of(r50, "resnet50") if lw[0] != "conv4_block2_2_bn"]
    f = write_keras2_h5(tmp_path / "r.h5", layers)
    with pytest.raises(WeightsError, match=r"missing from the file, e.g. \['conv4_block2_2_bn \(-> layer3.1.bn2\)'\]"):
        load_keras_backbone("resnet50", f)


def test_extra_layer_is_named(tmp_path, r50, inc):
    layers = keras_layers_of(r50, "resnet50") + [("extra_conv", [("kernel", np.zeros((3, 3, 8, 8), "f4"))])]
    f = write_keras2_h5(tmp_path / "r.h5", layers)
    with pytest.raises(
        WeightsError, match=r"no place in resnet50, e.g. \['/model_weights/extra_conv/extra_conv/kernel:0'\]"
    ):
        load_keras_backbone("resnet50", f)
    layers = keras_layers_of(inc, "inception_v3") + [
        ("conv2d_94", [("kernel", np.zeros((1, 1, 8, 8), "f4"))]),
        ("batch_normalization_94", [("beta", np.zeros(8, "f4"))] * 1),
    ]
    f = write_keras2_h5(tmp_path / "i.h5", layers)
    with pytest.raises(WeightsError, match=r"conv2d_94"):
        load_keras_backbone("inception_v3", f)


def test_shape_mismatch_names_layer(tmp_path, r50):
    layers = keras_layers_of(r50, "resnet50")
    layers = [
        (n, [(w, a[..., :32] if (n == "conv3_block1_2_conv" and w == "kernel") else a) for w, a in ws])
        for n, ws in layers
    ]
    f = write_keras2_h5(tmp_path / "r.h5", layers)
    with pytest.raises(
        WeightsError, match=r"layer 'conv3_block1_2_conv' kernel: file \(3, 3, 128, 32\) vs expected \(3, 3, 128, 128\)"
    ):
        load_keras_backbone("resnet50", f)


def test_dropped_conv_bias_and_gamma_reported(tmp_path, r50, inc):
    layers = [
        (n, [(w, a) for w, a in ws if not (n == "conv1_conv" and w == "bias")])
        for n, ws in keras_layers_of(r50, "resnet50")
    ]
    f = write_keras2_h5(tmp_path / "r.h5", layers)
    with pytest.raises(WeightsError, match=r"conv1_conv/bias \(Keras ResNet50 convolutions have biases\)"):
        load_keras_backbone("resnet50", f)
    layers = [
        (n, ([("gamma", np.ones(ws[0][1].shape, "f4"))] + ws) if n == "batch_normalization" else ws)
        for n, ws in keras_layers_of(inc, "inception_v3")
    ]
    f = write_keras2_h5(tmp_path / "i.h5", layers)
    with pytest.raises(WeightsError, match=r"scale=False: no gamma"):
        load_keras_backbone("inception_v3", f)


# ------------------------------------------------------------------------------------------ fine-tuning
def _bn_inputs(model):
    stats, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):

            def hook(mod, inp, _out, name=name):
                x = inp[0].detach().double()
                stats[name] = (x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=True))

            hooks.append(m.register_forward_hook(hook))
    return stats, hooks


@pytest.mark.parametrize("arch,size", [("resnet50", 64), ("inception_v3", 96)])
def test_finetune_step_keeps_running_stats_close(r50_file, inc_file, arch, size):
    """One training step moves every running statistic 10 % of the way to the batch statistic
    (PyTorch momentum 0.1, i.e. Keras momentum 0.9), never replacing it (what momentum=0.99 would do)."""
    torch.manual_seed(0)
    model = build_model(arch, "radimagenet", r50_file if arch == "resnet50" else inc_file, image_size=size, head="gap")
    model.requires_grad_(True)  # a full unfreeze must still not create a gamma for InceptionV3
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    stats, hooks = _bn_inputs(model.backbone)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        model(torch.rand(4, 1, size, size)), torch.tensor([0.0, 1.0, 0.0, 1.0])
    )
    loss.backward()
    opt.step()
    for h in hooks:
        h.remove()
    after = model.backbone.state_dict()
    assert len(stats) in (53, 94)
    for name, (bmean, bvar) in stats.items():
        old_m, old_v = before[f"{name}.running_mean"].double(), before[f"{name}.running_var"].double()
        new_m, new_v = after[f"{name}.running_mean"].double(), after[f"{name}.running_var"].double()
        assert torch.allclose(new_m, 0.9 * old_m + 0.1 * bmean, rtol=1e-4, atol=1e-5), name
        assert torch.allclose(new_v, 0.9 * old_v + 0.1 * bvar, rtol=1e-4, atol=1e-5), name
        # close to the loaded statistics: at most 10 % of the way to this batch's statistics
        assert ((new_m - old_m).abs() <= 0.1 * (bmean - old_m).abs() + 1e-5).all(), name
    if arch == "inception_v3":
        assert all(
            torch.equal(m.weight, torch.ones_like(m.weight))
            for m in model.modules()
            if isinstance(m, BatchNorm2dNoScale)
        )
