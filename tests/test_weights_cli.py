"""``lgenet weights inspect`` / ``convert`` (the functions and their argparse wiring)."""

from __future__ import annotations

import argparse
import json

import h5py
import numpy as np
import pytest
import torch
import torchvision
from safetensors import safe_open

from lgenet.cli.weights import add_weights_parser
from lgenet.errors import WeightsError
from lgenet.models import create_backbone
from lgenet.models.inspect import convert_weights, format_inspect, inspect_weights
from lgenet.models.keras_resnet import KerasResNet50
from lgenet.utils import sha256_file
from test_weights_keras import keras_layers_of, randomise, write_keras2_h5
from test_weights_pt import RadImageNetWrapper


@pytest.fixture(scope="module")
def r50():
    return randomise(KerasResNet50(), 5).eval()


@pytest.fixture(scope="module")
def r50_file(tmp_path_factory, r50):
    return write_keras2_h5(
        tmp_path_factory.mktemp("cli") / "RadImageNet-ResNet50_notop.h5", keras_layers_of(r50, "resnet50")
    )


def _parser():
    p = argparse.ArgumentParser(prog="lgenet")
    add_weights_parser(p.add_subparsers(dest="command"))
    return p


def test_inspect_keras_file(r50_file, capsys):
    rep = inspect_weights(r50_file)
    assert rep["format"] == "keras-h5" and rep["layout"] == "keras2-full" and rep["keras_version"] == "2.9.0"
    assert rep["architecture"] == "resnet50" and rep["supported"] and rep["loadable"]
    assert rep["n_tensors"] == 318 and rep["matched"] == 318
    assert rep["unmatched"] == rep["missing"] == rep["dropped"] == []
    assert rep["sha256"] == sha256_file(r50_file) and rep["norm"] == "keras_caffe"
    json.dumps(rep)
    args = _parser().parse_args(["weights", "inspect", str(r50_file)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "architecture:  resnet50" in out and rep["sha256"] in out and "loadable:      yes" in out


def test_inspect_reports_extra_and_missing(tmp_path, r50, capsys):
    layers = [lw for lw in keras_layers_of(r50, "resnet50") if lw[0] != "conv1_bn"]
    layers.append(("extra_conv", [("kernel", np.zeros((3, 3, 4, 4), "f4"))]))
    f = write_keras2_h5(tmp_path / "bad.h5", layers, layout="weights")
    rep = inspect_weights(f)
    assert rep["architecture"] == "resnet50" and not rep["loadable"]
    assert rep["matched"] == 314
    assert rep["unmatched"] == ["/extra_conv/extra_conv/kernel:0"]
    assert rep["missing"] == ["conv1_bn (-> bn1)"]
    args = _parser().parse_args(["weights", "inspect", "--json", str(f)])
    assert args.func(args) == 1
    assert json.loads(capsys.readouterr().out)["missing"] == ["conv1_bn (-> bn1)"]


def test_inspect_inception_and_unknown_keras(tmp_path):
    from lgenet.models.keras_inception import KerasInceptionV3

    f = write_keras2_h5(tmp_path / "i.h5", keras_layers_of(KerasInceptionV3(), "inception_v3", offset=3))
    rep = inspect_weights(f)
    assert rep["architecture"] == "inception_v3" and rep["loadable"] and rep["matched"] == 376
    g = write_keras2_h5(
        tmp_path / "other.h5", [("dense", [("kernel", np.zeros((4, 2), "f4")), ("bias", np.zeros(2, "f4"))])]
    )
    rep = inspect_weights(g)
    assert rep["architecture"] is None and not rep["loadable"] and "not loadable" in rep["notes"][0]
    h = tmp_path / "data.h5"
    with h5py.File(h, "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(WeightsError, match="not a Keras weights file"):
        inspect_weights(h)


def test_inspect_radimagenet_pt(tmp_path):
    tv = torchvision.models.resnet50(weights=None)
    f = tmp_path / "ResNet50.pt"
    torch.save(RadImageNetWrapper(tv).state_dict(), f)
    rep = inspect_weights(f)
    assert rep["format"] == "radimagenet-pt" and rep["architecture"] == "resnet50" and rep["loadable"]
    assert rep["norm"] == "radimagenet_pt" and rep["matched"] == len(tv.state_dict()) - 2  # no fc
    print(format_inspect(rep))


def test_convert_keras_keeps_v1_layout_and_norm(tmp_path, r50_file, r50, capsys):
    out = tmp_path / "r50.safetensors"
    args = _parser().parse_args(["weights", "convert", str(r50_file), "--arch", "resnet50", "--out", str(out)])
    assert args.func(args) == 0
    assert "layout keras" in capsys.readouterr().out
    with safe_open(str(out), framework="pt") as fh:
        meta = fh.metadata()
    assert (
        meta["lgenet_layout"] == "keras" and meta["lgenet_arch"] == "resnet50" and meta["lgenet_norm"] == "keras_caffe"
    )
    assert meta["lgenet_source_sha256"] == sha256_file(r50_file) and meta["lgenet_source_format"] == "keras-h5"
    bb = create_backbone("resnet50", init="radimagenet", weights_file=out).eval()
    assert isinstance(bb, KerasResNet50) and bb.layer2[0].conv1.stride == (2, 2)  # still ResNet v1
    assert bb.input_norm.name == "keras_caffe" and bb.weights_info.format == "lgenet-safetensors"
    assert bb.lgenet_layout == "keras"
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(bb.forward_features(x), r50.forward_features(x))
    rep = inspect_weights(out)
    assert rep["format"] == "lgenet-safetensors" and rep["layout"] == "keras" and rep["loadable"]
    with pytest.raises(WeightsError, match="converted for 'resnet50'"):
        create_backbone("inception_v3", init="radimagenet", weights_file=out)


def test_convert_radimagenet_pt_keeps_norm(tmp_path):
    tv = torchvision.models.resnet50(weights=None)
    f = tmp_path / "ResNet50.pt"
    torch.save(RadImageNetWrapper(tv).state_dict(), f)
    out = convert_weights(f, "resnet50", tmp_path / "rin.safetensors")
    bb = create_backbone("resnet50", init="radimagenet", weights_file=out)
    assert bb.input_norm.name == "radimagenet_pt" and bb.lgenet_layout == "timm"
    assert torch.equal(bb.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    with pytest.raises(WeightsError, match="must end in .safetensors"):
        convert_weights(f, "resnet50", tmp_path / "x.pt")


def test_the_cli_offers_the_architectures_the_library_converts():
    import lgenet.cli.weights as cli_weights
    from lgenet.models.inspect import ARCHS

    assert cli_weights.ARCHS == ARCHS
