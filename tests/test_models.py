import pytest
import timm
import torch

from lgenet.errors import ConfigError, WeightsError
from lgenet.models import NORMS, build_model, create_backbone, get_spec, list_backbones, rebuild_model
from lgenet.models.heads import FlattenHead


def test_registry_lists_and_rejects():
    assert {"resnet50", "inception_v3", "tiny"} <= set(list_backbones())
    with pytest.raises(ConfigError, match="unknown backbone 'resnet51'; available backbones are"):
        get_spec("resnet51")


def test_seed_input_sizes_and_norms_match_timm():
    assert get_spec("resnet50").input_size == 224 and get_spec("inception_v3").input_size == 299
    for arch in ("resnet50", "inception_v3"):
        spec = get_spec(arch)
        cfg = timm.models.get_pretrained_cfg(spec.imagenet_tag)
        norm = NORMS[spec.imagenet_norm]
        assert tuple(cfg.mean) == pytest.approx(norm.mean) and tuple(cfg.std) == pytest.approx(norm.std)


def test_tiny_classifier_shapes_and_head():
    m = build_model("tiny", image_size=64, dense_units=32)
    assert isinstance(m.head, FlattenHead)
    assert m.head[1].in_features == 128 * 4 * 4
    out = m(torch.rand(3, 1, 64, 64))
    assert out.shape == (3,)
    g = build_model("tiny", image_size=48, head="gap", dense_units=16)
    assert g(torch.rand(2, 1, 48, 48)).shape == (2,)
    assert m.target_layer_name == "backbone.stages.3"


def test_input_adapter_applies_norm():
    m = build_model("tiny", image_size=32, dense_units=8)
    x = torch.full((1, 1, 4, 4), 0.5)
    y = m.adapter(x)
    mean = torch.tensor(NORMS["imagenet"].mean).view(1, 3, 1, 1)
    std = torch.tensor(NORMS["imagenet"].std).view(1, 3, 1, 1)
    assert torch.allclose(y, (0.5 - mean) / std)


def test_rebuild_roundtrip():
    torch.manual_seed(0)
    m = build_model("tiny", image_size=32, dense_units=8).eval()
    m2 = rebuild_model(m.spec.to_dict(), m.state_dict()).eval()
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(m(x), m2(x))
    # built on the meta device and handed the saved tensors (no random initialisation): every tensor real, the
    # input adapter's constants (not in the state dict) included, and the weights trainable as before
    assert not any(t.is_meta for t in (*m2.parameters(), *m2.buffers()))
    assert torch.equal(m2.adapter.mean, m.adapter.mean) and all(p.requires_grad for p in m2.parameters())


def test_missing_radimagenet_file_is_an_error_not_random():
    with pytest.raises(WeightsError, match="cannot be downloaded automatically.*--weights-file"):
        create_backbone("resnet50", init="radimagenet")
    with pytest.raises(WeightsError, match="does not exist"):
        create_backbone("resnet50", init="imagenet", weights_file="/nonexistent/r50.pth")
    with pytest.raises(WeightsError, match="has no pretrained weights"):
        create_backbone("tiny", init="imagenet", weights_file=__file__)


def test_torchvision_state_dict_loads_and_mismatch_is_named(tmp_path):
    import torchvision

    tv = torchvision.models.resnet50(weights=None)
    f = tmp_path / "resnet50-tv.pth"
    torch.save(tv.state_dict(), f)
    bb = create_backbone("resnet50", init="imagenet", weights_file=f)
    assert torch.equal(bb.conv1.weight, tv.conv1.weight)
    assert bb.weights_info.dropped == ["fc.weight", "fc.bias"]
    assert bb.input_norm.name == "imagenet"
    # a DataParallel save is fixed up, loudly
    torch.save({f"module.{k}": v for k, v in tv.state_dict().items()}, f)
    bb = create_backbone("resnet50", init="imagenet", weights_file=f)
    assert any("module." in s for s in bb.weights_info.fixups)
    # the wrong architecture names the problem
    with pytest.raises(WeightsError, match="does not fit backbone 'inception_v3'.*missing"):
        create_backbone("inception_v3", init="imagenet", weights_file=f)


def test_radimagenet_pt_layout(tmp_path):
    import torchvision
    from torch import nn

    tv = torchvision.models.resnet50(weights=None)

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(*list(tv.children())[:-1])

    f = tmp_path / "ResNet50.pt"
    torch.save(Wrapper().state_dict(), f)
    bb = create_backbone("resnet50", init="radimagenet", weights_file=f)
    assert torch.equal(bb.layer4[2].conv3.weight, tv.layer4[2].conv3.weight)
    assert bb.input_norm.name == "radimagenet_pt"
    assert bb.weights_info.format == "radimagenet-pt"


def test_offline_imagenet_download_says_which_file(monkeypatch):
    def boom(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(timm, "create_model", boom)
    with pytest.raises(WeightsError, match="Offline, pass a local file with --weights-file"):
        create_backbone("resnet50", init="imagenet")


@pytest.mark.slow
@pytest.mark.parametrize("arch,size", [("resnet50", 64), ("inception_v3", 75)])
def test_real_backbones_forward_backward(arch, size):
    torch.manual_seed(0)
    m = build_model(arch, image_size=size, dense_units=16)
    x = torch.rand(2, 1, size, size)
    loss = m(x).sum()
    loss.backward()
    grads = [p.grad for p in m.backbone.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert m.backbone.eval().forward_features(torch.rand(1, 3, size, size)).shape[1] == 2048


def test_default_cam_layer_resolves_the_heart_at_the_runs_input_size():
    """The default Grad-CAM layer is the deepest whose map has >= 7 cells a side: layer4 at the seed's 224 px
    (7x7), layer3 at 112 px (layer4 would be 4x4); a rebuilt fold model keeps the layer it was saved with."""
    from lgenet.models import build_model
    from lgenet.models.factory import rebuild_model

    assert build_model("resnet50", "random", image_size=224).spec.target_layer == "layer4"
    m = build_model("resnet50", "random", image_size=112)
    assert m.spec.target_layer == "layer3" and m.target_layer_name == "backbone.layer3"
    assert build_model("inception_v3", "random", image_size=299).spec.target_layer == "Mixed_7c"
    old = {**m.spec.to_dict(), "target_layer": "layer4"}  # a fit saved before the rule existed
    assert rebuild_model(old).target_layer_name == "backbone.layer4"
