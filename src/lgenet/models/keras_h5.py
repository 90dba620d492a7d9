# Over 400 lines as one room: the reader of a single format, Keras HDF5 weights (layouts, name maps, checks).
"""Keras HDF5 weights for ResNet50 and InceptionV3, read with h5py alone (no TensorFlow).

Layouts read (detected from the file, never from its name):

``keras2-full``
    ``model.save('x.h5')`` with Keras 2 / tf.keras (the official RadImageNet files): a
    ``model_weights`` group whose ``layer_names`` attribute lists the layers; each layer group has a
    ``weight_names`` attribute (``conv1_conv/kernel:0`` ...) naming datasets under it
    (``model_weights/conv1_conv/conv1_conv/kernel:0``). Keras 3 writes the same layout for
    ``model.save('x.h5')`` but spells the weights ``kernel`` instead of ``kernel:0``; both are read.
``keras2-weights``
    ``model.save_weights('x.h5')`` with Keras 2 (Keras' ImageNet ``..._notop.h5``): the same, with
    the layer groups and ``layer_names`` at the top level.
``keras3-weights``
    Keras 3 ``model.save_weights('x.weights.h5')`` (and the ``model.weights.h5`` inside a ``.keras``
    zip): ``layers/<object>/vars/0, 1, ...`` with the Keras layer name in ``vars``' ``name``
    attribute; weights in Keras' variable order.

A layer nested in a sub-model (``Sequential([ResNet50(...), Dense(...)])`` saved whole) is found
through its weight names (``conv1_conv/kernel:0`` inside the ``resnet50`` group).

Mapping to the PyTorch modules of :mod:`.keras_resnet` / :mod:`.keras_inception`:

* ResNet50 by layer name (``conv{s}_block{b}_{0..3}_{conv,bn}``; the older keras-applications
  names ``conv1``, ``bn_conv1``, ``res2a_branch2a``, ``bn2a_branch1`` ... are translated). A file
  whose layers carry any other names is mapped by layer order instead, exactly as Keras' own
  ``load_weights`` does, when the count and every shape fit; the info records that fix-up.
* InceptionV3 by construction order: ``conv2d[_N]`` and ``batch_normalization[_N]`` sorted by their
  numeric suffix (which may be offset, e.g. ``conv2d_94`` ... ``conv2d_187`` in a file saved after
  another model was built), not by their position in the file (Keras lists layers by graph depth).
* Kernels HWIO -> OIHW; BatchNorm gamma/beta/moving_mean/moving_variance -> weight/bias/
  running_mean/running_var (InceptionV3 has no gamma).

Every tensor in the file is either loaded, or reported: classifier ``Dense`` layers are dropped
with a note (lgenet adds its own head); anything else left over, any missing tensor and any shape
mismatch is a :class:`~lgenet.errors.WeightsError` that names the Keras layer.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lgenet.errors import WeightsError, short_reason
from lgenet.models.keras_inception import INCEPTION_N_CONV, KerasInceptionV3
from lgenet.models.keras_resnet import (
    KerasResNet50,
    keras_resnet50_slots,
    keras_resnet50_topological_order,
    legacy_resnet50_name,
)
from lgenet.models.provenance import WeightsInfo
from lgenet.utils import sha256_file

__all__ = [
    "KerasLayer",
    "KerasWeightsFile",
    "KerasMapping",
    "SUPPORTED_ARCHS",
    "build_keras_layout",
    "read_keras_weights",
    "detect_keras_arch",
    "map_keras_weights",
    "load_keras_backbone",
]

log = logging.getLogger("lgenet")

SUPPORTED_ARCHS = ("resnet50", "inception_v3")
_ROLES = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")
_SUFFIX = re.compile(r":\d+$")
_CONV_AUTO = re.compile(r"^conv2d(?:_(\d+))?$")
_BN_AUTO = re.compile(r"^batch_normalization(?:_(\d+))?$")


def build_keras_layout(arch: str) -> nn.Module:
    """A randomly initialised module with the Keras layout of ``arch`` (``resnet50``: ResNet v1,
    ``inception_v3``). Used to load Keras files and to rebuild saved models offline."""
    if arch == "resnet50":
        return KerasResNet50()
    if arch == "inception_v3":
        return KerasInceptionV3()
    raise WeightsError(f"lgenet reads Keras weights for {list(SUPPORTED_ARCHS)}, not {arch!r}")


# --------------------------------------------------------------------------------------------- reading
@dataclass
class KerasLayer:
    """One weighted Keras layer: its tensors in file order, keyed by role (``kernel``, ``gamma``...)
    or by position (``#0``, ``#1``... where the file does not name them)."""

    name: str
    tensors: dict[str, np.ndarray]
    paths: dict[str, str]  # role -> HDF5 dataset path (for messages)

    @property
    def named(self) -> bool:
        return all(not r.startswith("#") for r in self.tensors)

    def is_dense(self) -> bool:
        shapes = [a.ndim for a in self.tensors.values()]
        return bool(shapes) and max(shapes) == 2


@dataclass
class KerasWeightsFile:
    """The weighted layers of a Keras HDF5 file, in the file's order."""

    path: Path
    layout: str
    keras_version: str | None
    layers: dict[str, KerasLayer]
    unlisted: list[str] = field(default_factory=list)  # datasets not referenced by any weight_names
    ignored_groups: list[str] = field(default_factory=list)  # e.g. optimizer_weights

    @property
    def n_tensors(self) -> int:
        return sum(len(layer.tensors) for layer in self.layers.values())

    @property
    def n_params(self) -> int:
        return int(sum(a.size for layer in self.layers.values() for a in layer.tensors.values()))


def _s(x) -> str:
    return x.decode("utf-8") if isinstance(x, (bytes, np.bytes_)) else str(x)


def _str_list(attrs, key) -> list[str] | None:
    if key not in attrs:
        return None
    return [_s(v) for v in np.asarray(attrs[key]).reshape(-1)]


def _open_h5(path: Path):
    import h5py

    if path.suffix.lower() == ".keras" or zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                if "model.weights.h5" not in zf.namelist():
                    raise WeightsError(
                        f"{path} is a zip archive without 'model.weights.h5'; it is not a Keras 3 .keras file"
                    )
                data = zf.read("model.weights.h5")
        except zipfile.BadZipFile as exc:
            raise WeightsError(
                f"{path} could not be read as a .keras zip archive ({exc}); is the download complete?"
            ) from None
        return h5py.File(io.BytesIO(data), "r")
    if not h5py.is_hdf5(str(path)):
        raise WeightsError(
            f"{path} is not an HDF5 file (no HDF5 signature); a Keras weights file is HDF5 (.h5). "
            "If it is a PyTorch file, give it a .pt/.pth/.safetensors name"
        )
    try:
        return h5py.File(str(path), "r")
    except OSError as exc:
        size = path.stat().st_size
        raise WeightsError(
            f"{path} ({size} bytes) could not be opened as HDF5: {exc}. The file is probably truncated or "
            "corrupt (an interrupted download?); download it again and compare its SHA-256 "
            "(`lgenet weights inspect FILE`) with the source's"
        ) from None


def read_keras_weights(path: str | Path) -> KerasWeightsFile:
    """Read every weight tensor of a Keras HDF5 (or ``.keras``) file, with layer and weight names."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {p} does not exist; check the --weights-file path")
    with _open_h5(p) as f:
        try:
            return _read_open(p, f)
        except WeightsError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # damaged object headers / data
            raise WeightsError(
                f"{p}: reading the Keras weights failed ({short_reason(exc)}); the file is probably "
                "truncated or corrupt: download it again and check its SHA-256"
            ) from None


def _read_open(p: Path, f) -> KerasWeightsFile:
    import h5py

    version = _s(f.attrs["keras_version"]) if "keras_version" in f.attrs else None
    if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
        root, layout = f["model_weights"], "keras2-full"
        ignored = [k for k in f.keys() if k != "model_weights"]  # optimizer_weights
        version = _s(root.attrs["keras_version"]) if "keras_version" in root.attrs else version
    elif "layer_names" in f.attrs:
        root, layout, ignored = f, "keras2-weights", []
    elif "layers" in f and isinstance(f["layers"], h5py.Group):
        return _read_keras3(p, f)
    else:
        raise WeightsError(
            f"{p} is an HDF5 file but not a Keras weights file: it has no 'model_weights' group, no "
            f"'layer_names' attribute and no Keras 3 'layers' group (top-level keys: {sorted(f.keys())[:8]}). "
            "lgenet reads Keras ResNet50/InceptionV3 weights saved with model.save() or model.save_weights()"
        )

    layers: dict[str, KerasLayer] = {}
    referenced: set[str] = set()
    for lname in _str_list(root.attrs, "layer_names") or []:
        if lname not in root:
            raise WeightsError(
                f"{p}: layer {lname!r} is listed in 'layer_names' but its group is missing (damaged file?)"
            )
        g = root[lname]
        wnames = _str_list(g.attrs, "weight_names") or []
        parents = {w.rsplit("/", 1)[0] if "/" in w else "" for w in wnames}
        nested = len(parents) > 1  # a sub-model saved as one layer: owner = weight name's parent
        for i, wn in enumerate(wnames):
            if wn not in g:
                raise WeightsError(f"{p}: weight {wn!r} of layer {lname!r} is listed but missing (damaged file?)")
            ds = g[wn]
            referenced.add(ds.name)
            parts = _SUFFIX.sub("", wn).split("/")
            owner = parts[-2] if nested and len(parts) >= 2 else lname
            role = parts[-1] if parts[-1] in _ROLES else None
            layer = layers.setdefault(owner, KerasLayer(owner, {}, {}))
            key = role if role is not None and role not in layer.tensors else f"#{len(layer.tensors)}"
            layer.tensors[key] = np.asarray(ds[()])
            layer.paths[key] = ds.name
    for layer in layers.values():  # positional fallback if any weight of a layer has an unknown name
        if not layer.named:
            layer.tensors = {f"#{i}": a for i, a in enumerate(layer.tensors.values())}
            layer.paths = {f"#{i}": q for i, q in enumerate(layer.paths.values())}
    unlisted: list[str] = []
    root.visititems(
        lambda n, o: unlisted.append(o.name) if isinstance(o, h5py.Dataset) and o.name not in referenced else None
    )
    return KerasWeightsFile(p, layout, version, layers, unlisted, ignored)


def _read_keras3(p: Path, f) -> KerasWeightsFile:
    import h5py

    layers: dict[str, KerasLayer] = {}
    seen: set[str] = set()

    def walk(group) -> None:
        for key in group:
            g = group[key]
            if not isinstance(g, h5py.Group):
                continue
            v = g.get("vars")
            if isinstance(v, h5py.Group) and len(v):
                name = _s(v.attrs["name"]) if "name" in v.attrs else key
                idx = sorted((k for k in v.keys() if k.isdigit()), key=int)
                if name in layers:
                    name = f"{name}@{g.name}"
                layers[name] = KerasLayer(
                    name,
                    {f"#{i}": np.asarray(v[k][()]) for i, k in enumerate(idx)},
                    {f"#{i}": v[k].name for i, k in enumerate(idx)},
                )
                seen.update(v[k].name for k in idx)
            if "layers" in g:
                walk(g["layers"])

    walk(f["layers"])
    unlisted: list[str] = []
    for top in ("layers", "vars"):  # model weights; a top-level 'optimizer' group is noted, not read
        if isinstance(f.get(top), h5py.Group):
            f[top].visititems(
                lambda n, o: unlisted.append(o.name) if isinstance(o, h5py.Dataset) and o.name not in seen else None
            )
    ignored = [k for k in f.keys() if k not in ("layers", "vars")]
    return KerasWeightsFile(p, "keras3-weights", None, layers, unlisted, ignored)


# --------------------------------------------------------------------------------------------- detection
def detect_keras_arch(kf: KerasWeightsFile) -> tuple[str | None, str]:
    """(architecture, how it was recognised). The architecture is one of :data:`SUPPORTED_ARCHS`,
    another keras.applications name (unsupported; for messages), or None."""
    names = set(kf.layers)
    if "conv5_block16_2_conv" in names or "conv1/conv" in names:
        return "densenet", "DenseNet layer names (conv5_block16_*, conv1/conv)"
    if "post_bn" in names:
        return "resnet_v2", "ResNetV2 layer names (post_bn)"
    if "conv5_block3_3_conv" in names:
        if "conv4_block36_3_conv" in names:
            return "resnet152", "keras.applications ResNet152 layer names"
        if "conv4_block23_3_conv" in names:
            return "resnet101", "keras.applications ResNet101 layer names"
        return "resnet50", "keras.applications ResNet50 layer names (conv1_conv ... conv5_block3_3_conv)"
    if {"conv_7b", "block8_10_conv"} & names:
        return "inception_resnet_v2", "InceptionResNetV2 layer names (conv_7b)"
    n_conv = sum(1 for n in names if _CONV_AUTO.match(n))
    n_bn = sum(1 for n in names if _BN_AUTO.match(n))
    if n_conv == INCEPTION_N_CONV and n_bn == INCEPTION_N_CONV:
        return (
            "inception_v3",
            f"{n_conv} auto-named conv2d/batch_normalization layer pairs (keras.applications InceptionV3)",
        )
    if n_conv and n_bn and abs(n_conv - INCEPTION_N_CONV) <= 8:
        return "inception_v3", (
            f"auto-named conv2d/batch_normalization layers like InceptionV3, but {n_conv} conv2d and {n_bn} "
            f"batch_normalization layers where InceptionV3 has {INCEPTION_N_CONV} of each"
        )
    if "bn_conv1" in names and "res5c_branch2c" in names:
        return "resnet50", "ResNet50 with the older keras-applications layer names (res2a_branch2a ... res5c_branch2c)"
    return None, "no known keras.applications layer names"


# --------------------------------------------------------------------------------------------- mapping
@dataclass
class KerasMapping:
    """The result of fitting a file's tensors to a module (nothing raised; see ``problems``)."""

    arch: str
    state_dict: dict[str, torch.Tensor]
    matched: list[str]  # dataset paths loaded
    unmatched: list[str]  # dataset paths of layers the architecture has no place for
    dropped: list[str]  # classifier (Dense) dataset paths, dropped by design
    missing: list[str]  # "keras layer (module path)" the file lacks
    shape_errors: list[str]
    notes: list[str]

    @property
    def problems(self) -> list[str]:
        out = []
        if self.missing:
            out.append(
                f"{len(self.missing)} layer(s)/tensor(s) the architecture needs are missing from the file, e.g. {self.missing[:4]}"
            )
        if self.unmatched:
            out.append(
                f"{len(self.unmatched)} tensor(s) in the file have no place in {self.arch}, e.g. {self.unmatched[:4]}"
            )
        if self.shape_errors:
            out.append(f"{len(self.shape_errors)} shape mismatch(es): " + "; ".join(self.shape_errors[:3]))
        return out


_BN_ROLES_SCALE = ("gamma", "beta", "moving_mean", "moving_variance")
_BN_ROLES_NOSCALE = ("beta", "moving_mean", "moving_variance")
_TORCH_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _assign(layer: KerasLayer, kind: str, prefix: str, own: dict[str, torch.Tensor], m: KerasMapping) -> None:
    """Put one Keras layer's tensors into ``m.state_dict`` under ``prefix``."""
    if kind == "conv":
        roles = ("kernel", "bias") if f"{prefix}.bias" in own else ("kernel",)
    else:
        roles = _BN_ROLES_SCALE if f"{prefix}.weight" in own else _BN_ROLES_NOSCALE
    if layer.named:
        have = tuple(layer.tensors)
        extra = [r for r in have if r not in roles]
        lacking = [r for r in roles if r not in have]
    else:  # positional (Keras' variable order)
        have = tuple(layer.tensors)
        extra = list(have[len(roles) :])
        lacking = list(roles[len(have) :])
        layer = KerasLayer(layer.name, dict(zip(roles, layer.tensors.values())), dict(zip(roles, layer.paths.values())))
    if lacking:
        hint = " (Keras ResNet50 convolutions have biases)" if kind == "conv" and lacking == ["bias"] else ""
        m.missing += [f"{layer.name}/{r}{hint} (-> {prefix})" for r in lacking]
    if extra:
        why = " (Keras InceptionV3 BatchNorm has scale=False: no gamma)" if "gamma" in extra else ""
        m.unmatched += [f"{layer.paths.get(r, layer.name + '/' + r)}{why}" for r in extra]
    for r in roles:
        if r not in layer.tensors:
            continue
        a = layer.tensors[r]
        if kind == "conv":
            key = f"{prefix}.{'weight' if r == 'kernel' else 'bias'}"
            t = torch.from_numpy(np.ascontiguousarray(a.transpose(3, 2, 0, 1) if a.ndim == 4 else a))
            file_shape = tuple(a.shape)
        else:
            key = f"{prefix}.{_TORCH_BN[r]}"
            t = torch.from_numpy(np.ascontiguousarray(a))
            file_shape = tuple(a.shape)
        want = tuple(own[key].shape)
        if tuple(t.shape) != want:
            exp = (want[2], want[3], want[1], want[0]) if kind == "conv" and r == "kernel" and len(want) == 4 else want
            m.shape_errors.append(f"layer {layer.name!r} {r}: file {file_shape} vs expected {exp} (-> {prefix})")
            continue
        m.state_dict[key] = t.to(torch.float32)
        m.matched.append(layer.paths[r])


def _slots(
    arch: str, kf: KerasWeightsFile, module: nn.Module, notes: list[str]
) -> tuple[list[tuple[str, str, str]], set[str]]:
    """(keras layer, kind, module path) slots for this file, and the names of the layers consumed."""
    if arch == "resnet50":
        slots = keras_resnet50_slots()
        if any(s[0] in kf.layers for s in slots):
            return slots, {s[0] for s in slots}
        if "bn_conv1" in kf.layers or "res2a_branch2a" in kf.layers:  # older keras-applications names
            notes.append(
                "older keras-applications ResNet50 layer names (res2a_branch2a ...) translated to conv2_block1_1_conv ..."
            )
            slots = [(legacy_resnet50_name(k), kind, p) for k, kind, p in slots]
            return slots, {s[0] for s in slots}
        # Names unknown: pair layers by order as Keras' load_weights does (file order vs model order).
        by_name = {s[0]: s for s in slots}
        weighted = [n for n, layer in kf.layers.items() if not layer.is_dense()]
        topo = keras_resnet50_topological_order()
        if len(weighted) != len(topo):
            return slots, {s[0] for s in slots}  # everything reported missing/unmatched below
        notes.append(
            "layer names are not keras.applications ResNet50 names (e.g. "
            f"{weighted[2]!r}); layers paired by file order like Keras' own load_weights"
        )
        return [(fname, by_name[tname][1], by_name[tname][2]) for fname, tname in zip(weighted, topo)], set(weighted)
    # inception_v3: conv2d[_N] / batch_normalization[_N] in construction (suffix) order
    pairs = module.conv_bn_modules()
    convs = sorted((n for n in kf.layers if _CONV_AUTO.match(n)), key=lambda n: int(_CONV_AUTO.match(n).group(1) or 0))
    bns = sorted((n for n in kf.layers if _BN_AUTO.match(n)), key=lambda n: int(_BN_AUTO.match(n).group(1) or 0))
    off = [
        int(_CONV_AUTO.match(convs[0]).group(1) or 0) if convs else 0,
        int(_BN_AUTO.match(bns[0]).group(1) or 0) if bns else 0,
    ]
    if any(off):
        notes.append(
            f"InceptionV3 layer counters start at conv2d_{off[0]} / batch_normalization_{off[1]}; mapped by construction order"
        )
    slots = []
    for i, (cpath, bpath) in enumerate(pairs):
        slots.append((convs[i] if i < len(convs) else f"conv2d_{off[0] + i}?", "conv", cpath))
        slots.append((bns[i] if i < len(bns) else f"batch_normalization_{off[1] + i}?", "bn", bpath))
    return slots, set(convs[: len(pairs)]) | set(bns[: len(pairs)])


def map_keras_weights(kf: KerasWeightsFile, arch: str, module: nn.Module | None = None) -> KerasMapping:
    """Fit the file's tensors to ``build_keras_layout(arch)`` (or ``module``, a module of that
    layout); problems are collected, not raised."""
    if module is None:
        with torch.device("meta"):  # shapes and names only
            module = build_keras_layout(arch)
    own = module.state_dict()
    m = KerasMapping(arch, {}, [], [], [], [], [], [])
    slots, consumed = _slots(arch, kf, module, m.notes)
    for kname, kind, prefix in slots:
        layer = kf.layers.get(kname)
        if layer is None:
            m.missing.append(f"{kname} (-> {prefix})")
            continue
        _assign(layer, kind, prefix, own, m)
    for name, layer in kf.layers.items():
        if name in consumed:
            continue
        paths = list(layer.paths.values())
        if layer.is_dense():
            m.dropped += paths
        else:
            m.unmatched += paths
    if m.dropped:
        m.notes.append(f"dropped {len(m.dropped)} classifier (Dense) tensor(s); lgenet adds its own head")
    m.unmatched += kf.unlisted
    if kf.ignored_groups:
        m.notes.append(f"ignored non-weight group(s) {kf.ignored_groups} (e.g. optimizer state)")
    return m


# --------------------------------------------------------------------------------------------- loading
def load_keras_backbone(arch: str, path: str | Path, init: str = "radimagenet") -> tuple[nn.Module, WeightsInfo]:
    """Build ``arch`` in its Keras layout and load a Keras HDF5 file into it.

    Returns ``(module, info)``; ``module.forward_features(x)`` equals Keras' ``include_top=False``
    output (NHWC there, NCHW here) for an input preprocessed as the weights expect
    (``NORMS['keras_caffe']``).

    Raises:
        WeightsError: the file is missing, not HDF5, truncated, not Keras, holds another
            architecture, or has missing/extra/mis-shaped tensors (named).
    """
    if arch not in SUPPORTED_ARCHS:
        raise WeightsError(f"lgenet reads Keras weights for {list(SUPPORTED_ARCHS)}, not {arch!r}")
    p = Path(path)
    kf = read_keras_weights(p)
    if not kf.layers:
        raise WeightsError(f"{p} is a Keras file ({kf.layout}) without any weights")
    detected, how = detect_keras_arch(kf)
    if detected is not None and detected != arch:
        raise WeightsError(
            f"{p} holds Keras {detected} weights ({how}), but the backbone is {arch!r}; "
            f"pass the file made for {arch} or choose the matching architecture"
        )
    module = build_keras_layout(arch)
    m = map_keras_weights(kf, arch, module)
    if m.problems:
        raise WeightsError(
            f"Keras weights file {p} ({kf.layout}) does not fit {arch}: "
            + "; ".join(m.problems)
            + ". Is it the keras.applications architecture with include_top=False? "
            "(`lgenet weights inspect FILE` lists what it holds)"
        )
    res = module.load_state_dict(m.state_dict, strict=False)
    left = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    if left or res.unexpected_keys:  # pragma: no cover - map_keras_weights guarantees completeness
        raise WeightsError(f"internal mapping error for {p}: missing {left[:4]}, unexpected {res.unexpected_keys[:4]}")
    info = WeightsInfo(
        init=init,
        source="file",
        format="keras-h5",
        file_sha256=sha256_file(p),
        norm="keras_caffe",
        n_loaded=len(m.matched),
        fixups=[f"read Keras layout {kf.layout}" + (f" (Keras {kf.keras_version})" if kf.keras_version else "")]
        + m.notes,
        dropped=list(m.dropped),
    )
    for note in m.notes:
        log.info("weights %s: %s", p.name, note)
    return module, info
