"""Loading pretrained weights into registry backbones.

Sources, by initialisation:

* ``imagenet`` — timm's torchvision-compatible weights (``resnet50.tv_in1k``,
  ``inception_v3.tv_in1k``). With ``weights_file`` the file is always used (``.pth``/``.pt``/``.bin``
  torchvision or timm state dict, or ``.safetensors``); without it timm downloads them when online
  and, offline, a :class:`~lgenet.errors.WeightsError` says which file to pass.
* ``radimagenet`` — a local file only (the weights are behind a data-use agreement and have no
  download URL): the official PyTorch ``.pt`` files (``ResNet50.pt``, ``InceptionV3.pt``: a
  torchvision module wrapped as ``backbone = nn.Sequential(*children)``, keys ``backbone.N.…``) or
  the official Keras ``.h5`` files (see :mod:`lgenet.models.keras_h5`).

A ``.safetensors`` file written by ``lgenet weights convert`` carries its architecture, module layout
(``keras`` for a converted Keras file: ResNet50 stays v1) and input convention in its metadata;
:func:`load_pretrained` rebuilds that layout and uses that convention.

Documented fix-ups (logged, never silent): a ``module.`` prefix from ``nn.DataParallel`` is
stripped; classifier tensors (``fc.*``, ``AuxLogits.*``) are dropped because lgenet adds its own
head. Any other missing, unexpected or mis-shaped tensor is an error naming it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lgenet.errors import WeightsError, short_reason
from lgenet.models.provenance import WeightsInfo
from lgenet.models.registry import NORMS, BackboneSpec, InputNorm
from lgenet.utils import sha256_file

__all__ = ["WeightsInfo", "load_state_dict_file", "load_pretrained", "read_lgenet_metadata", "LGENET_META_KEYS"]

log = logging.getLogger("lgenet")

_DROP_PREFIXES = ("fc.", "AuxLogits.", "classifier.", "head.")

#: safetensors metadata keys written by ``lgenet weights convert`` (all values are strings).
LGENET_META_KEYS = (
    "lgenet_arch",  # registry name the tensors fit
    "lgenet_layout",  # 'keras' (keras_h5.build_keras_layout) or 'timm' (the registry's build)
    "lgenet_norm",  # NORMS key the weights expect (absent: decided by init as for any state dict)
    "lgenet_source_name",
    "lgenet_source_format",
    "lgenet_source_sha256",
)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or torch-pickled state dict (tensors only; no code is unpickled)."""
    p = check_weights_path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            with warnings.catch_warnings():  # torch's own notes on foreign pickles talk of unsafe loading
                warnings.simplefilter("ignore")
                obj = torch.load(str(p), map_location="cpu", weights_only=True)
            sd = _unwrap_state_dict(obj, p)
    except WeightsError:
        raise
    except Exception as exc:  # torch/safetensors raise many kinds for a corrupt file
        raise WeightsError(
            f"weights file {p} could not be read as a PyTorch state dict ({short_reason(exc)}). "
            "If it is a whole pickled model, re-save it with torch.save(model.state_dict(), path); "
            "if it is a Keras file it must end in .h5"
        ) from None
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"weights file {p}: entries {bad[:5]} are not tensors; expected a state dict")
    return sd


def check_weights_path(path: str | Path) -> Path:
    """``path`` as an existing weights file; a clear error for a missing path or a folder."""
    p = Path(path)
    if p.is_dir():
        raise WeightsError(f"weights file {p} is a folder, not a weights file; give the .h5/.pt/.pth/.safetensors file")
    if not p.is_file():
        raise WeightsError(f"weights file {p} does not exist; check the --weights-file path")
    return p


def _unwrap_state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and ("spec" in obj and "state_dict" in obj or "localiser" in obj):
        what = obj.get("spec", {}).get("arch", "?") if isinstance(obj.get("spec"), Mapping) else "?"
        kind = "segmentation fold model" if "localiser" in obj else f"classifier fold model ({what})"
        raise WeightsError(
            f"weights file {path} is an lgenet {kind}: a whole trained model from a run directory, not "
            "backbone weights; apply it with `lgenet predict --run RUN` (or `lgenet segment apply`)"
        )
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                return dict(obj[key])
        return dict(obj)
    if isinstance(obj, nn.Module):  # pragma: no cover - weights_only=True refuses modules
        return obj.state_dict()
    raise WeightsError(f"weights file {path} holds a {type(obj).__name__}, not a state dict")


def _strip_module_prefix(sd: dict[str, torch.Tensor], info: WeightsInfo) -> dict[str, torch.Tensor]:
    if sd and all(k.startswith("module.") for k in sd):
        info.fixups.append("stripped 'module.' prefix (nn.DataParallel save)")
        return {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _radimagenet_pt_to_timm(sd: dict[str, torch.Tensor], spec: BackboneSpec, info: WeightsInfo) -> dict:
    """Map RadImageNet ``backbone.N.`` keys to the torchvision/timm module names by child order."""
    import torchvision

    if spec.name == "resnet50":
        with torch.device("meta"):  # only the child names are needed
            ref = torchvision.models.resnet50(weights=None)
    elif spec.name == "inception_v3":
        # The official InceptionV3.pt has no AuxLogits child; a file wrapped from a module built with
        # aux_logits=True has it as child 15 (then dropped with the classifier tensors).
        aux = any(k.startswith("backbone.15.conv0.") for k in sd)
        with torch.device("meta"):
            ref = torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=False)
    else:
        raise WeightsError(f"RadImageNet .pt weights exist for resnet50 and inception_v3, not {spec.name!r}")
    names = [n for n, _ in ref.named_children()]
    out = {}
    for k, v in sd.items():
        head, idx, rest = k.split(".", 2) if k.count(".") >= 2 else (k, "", "")
        if head != "backbone" or not idx.isdigit() or int(idx) >= len(names):
            raise WeightsError(
                f"unexpected key {k!r} in a RadImageNet .pt file for {spec.name}; expected keys like "
                "'backbone.0.weight' (the official RadImageNet_pytorch layout)"
            )
        out[f"{names[int(idx)]}.{rest}"] = v
    info.fixups.append("renamed RadImageNet 'backbone.N.' keys to torchvision module names")
    return out


def _load_into(
    module: nn.Module, sd: dict[str, torch.Tensor], spec: BackboneSpec, path: Path, info: WeightsInfo
) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    shape_bad = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sd
        if k in own and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shape_bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) missing from the file, e.g. {missing[:4]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:4]}")
        if shape_bad:
            parts.append(f"{len(shape_bad)} shape mismatch(es), e.g. {shape_bad[:3]}")
        raise WeightsError(
            f"weights file {path} does not fit backbone {spec.name!r}: "
            + "; ".join(parts)
            + ". Is it the right architecture? (`lgenet weights inspect FILE` tells what it holds)"
        )
    module.load_state_dict(sd, strict=False)
    info.n_loaded = len(sd)


def _drop_classifier(sd: dict[str, torch.Tensor], info: WeightsInfo) -> dict[str, torch.Tensor]:
    keep = {}
    for k, v in sd.items():
        if k.startswith(_DROP_PREFIXES):
            info.dropped.append(k)
        else:
            keep[k] = v
    if info.dropped:
        info.fixups.append(
            f"dropped {len(info.dropped)} classifier tensor(s) ({sorted({k.split('.')[0] for k in info.dropped})}); lgenet adds its own head"
        )
    return keep


def load_pretrained(
    spec: BackboneSpec, init: str, weights_file: str | Path | None
) -> tuple[nn.Module, InputNorm, WeightsInfo]:
    """Build ``spec``'s backbone with ``init`` weights. Returns (module, input norm, info)."""
    if init == "random":
        if weights_file:
            raise WeightsError(
                f"a weights file ({weights_file}) was given for init 'random'; use --init imagenet or radimagenet "
                "to load it, or drop --weights-file"
            )
        return (
            spec.build(),
            NORMS[spec.imagenet_norm],
            WeightsInfo(init="random", source="random", norm=spec.imagenet_norm),
        )

    if init not in ("imagenet", "radimagenet"):
        raise WeightsError(f"unknown init {init!r}; use 'random', 'imagenet' or 'radimagenet'")
    if spec.name == "tiny":
        raise WeightsError("backbone 'tiny' has no pretrained weights; use init 'random'")

    if weights_file is None:
        if init == "radimagenet":
            raise WeightsError(
                f"RadImageNet weights for {spec.name} cannot be downloaded automatically (they are shared under a "
                "data-use agreement); pass the file you obtained with --weights-file, e.g. "
                f"{'RadImageNet-ResNet50_notop.h5 or ResNet50.pt' if spec.name == 'resnet50' else 'RadImageNet-InceptionV3_notop.h5 or InceptionV3.pt'}"
            )
        return _from_hub(spec)

    path = check_weights_path(weights_file)
    if path.suffix.lower() in (".h5", ".hdf5", ".keras") or _is_hdf5(path):
        import lgenet.models.keras_h5 as keras_h5  # the Keras HDF5 reader (no TensorFlow needed)

        module, info = keras_h5.load_keras_backbone(spec.name, path, init=init)
        return module, NORMS["keras_caffe"], info

    meta = read_lgenet_metadata(path)
    if meta:
        return _load_lgenet_safetensors(spec, init, path, meta)

    info = WeightsInfo(init=init, source="file", file_sha256=sha256_file(path))
    sd = load_state_dict_file(path)
    sd = _strip_module_prefix(sd, info)
    if any(k.startswith("backbone.") for k in sd):
        sd = _radimagenet_pt_to_timm(sd, spec, info)
        info.format = "radimagenet-pt"
        norm = NORMS["radimagenet_pt"]
    else:
        info.format = "safetensors" if path.suffix == ".safetensors" else "torch"
        norm = NORMS[spec.imagenet_norm] if init == "imagenet" else NORMS["radimagenet_pt"]
    sd = _drop_classifier(sd, info)
    module = spec.build()
    _load_into(module, sd, spec, path, info)
    info.norm = norm.name
    for f in info.fixups:
        log.info("weights %s: %s", path.name, f)
    return module, norm, info


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def read_lgenet_metadata(path: str | Path) -> dict[str, str]:
    """The ``lgenet_*`` metadata of a ``.safetensors`` file ({} for any other file or none)."""
    p = Path(path)
    if p.suffix != ".safetensors" or not p.is_file():
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # corrupt header
        raise WeightsError(f"weights file {p} could not be read as safetensors ({short_reason(exc)})") from None
    return {k: v for k, v in meta.items() if k.startswith("lgenet_")}


def _load_lgenet_safetensors(
    spec: BackboneSpec, init: str, path: Path, meta: dict[str, str]
) -> tuple[nn.Module, InputNorm, WeightsInfo]:
    """A file from ``lgenet weights convert``: rebuild the layout it was converted from."""
    arch, layout = meta.get("lgenet_arch"), meta.get("lgenet_layout", "timm")
    if arch and arch != spec.name:
        raise WeightsError(
            f"weights file {path} was converted for {arch!r}, but the backbone is {spec.name!r}; "
            f"use --arch {arch} or convert the file made for {spec.name}"
        )
    if layout == "keras":
        import lgenet.models.keras_h5 as keras_h5

        module = keras_h5.build_keras_layout(spec.name)
    elif layout == "timm":
        module = spec.build()
    else:
        raise WeightsError(
            f"weights file {path}: unknown lgenet_layout {layout!r} in its metadata (expected 'keras' or 'timm')"
        )
    norm_name = meta.get("lgenet_norm") or (spec.imagenet_norm if init == "imagenet" else "radimagenet_pt")
    if norm_name not in NORMS:
        raise WeightsError(
            f"weights file {path}: unknown lgenet_norm {norm_name!r} in its metadata; known: {sorted(NORMS)}"
        )
    info = WeightsInfo(
        init=init, source="file", format="lgenet-safetensors", file_sha256=sha256_file(path), norm=norm_name
    )
    src = meta.get("lgenet_source_name")
    if src:
        info.fixups.append(
            f"converted by lgenet from {src} ({meta.get('lgenet_source_format', '?')}, sha256 "
            f"{meta.get('lgenet_source_sha256', '?')}); layout {layout}"
        )
    sd = load_state_dict_file(path)
    _load_into(module, sd, spec, path, info)
    info.n_loaded = sum(1 for k in sd if not k.endswith("num_batches_tracked"))
    module.lgenet_layout = layout
    return module, NORMS[norm_name], info


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the model hub answers within ``timeout`` seconds (one TCP connection; no request is made)."""
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _from_hub(spec: BackboneSpec) -> tuple[nn.Module, InputNorm, WeightsInfo]:
    import os

    import timm

    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or not hub_reachable()
    # offline, the hub client retries for over a minute before it fails; with HF_HUB_OFFLINE it reads its
    # cache at once (a file downloaded before still loads) or fails at once with the message below
    try:
        with _hub_offline(offline):
            module = timm.create_model(spec.imagenet_tag, pretrained=True, num_classes=0, global_pool="")
    except Exception as exc:  # offline: huggingface_hub / urllib errors of many kinds
        raise WeightsError(
            f"could not download ImageNet weights for {spec.name} (timm '{spec.imagenet_tag}')"
            + (" (the hub is not reachable from here)" if offline else "")
            + f": {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Offline, pass a local file with "
            f"--weights-file: the timm file 'model.safetensors' of hf-hub timm/{spec.imagenet_tag} or the torchvision "
            f"state dict ({'resnet50-0676ba61.pth' if spec.name == 'resnet50' else 'inception_v3_google-0cc3c7bd.pth'})"
        ) from None
    return (
        module,
        NORMS[spec.imagenet_norm],
        WeightsInfo(init="imagenet", source="timm-hub", format="timm", norm=spec.imagenet_norm),
    )


@contextlib.contextmanager
def _hub_offline(on: bool):
    """The hub client in offline mode for the block (``on``): it reads its cache at once or fails at once. The
    client reads HF_HUB_OFFLINE once, when it is imported, so its constant is set as well as the variable."""
    if not on:
        yield
        return
    import os

    old_env = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - timm without the hub client
        constants = None
    old = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = old
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env
