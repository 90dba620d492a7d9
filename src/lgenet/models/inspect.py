"""``lgenet weights inspect FILE`` and ``lgenet weights convert FILE --arch A --out F.safetensors``.

``inspect_weights`` says what a weights file holds without loading it into a run: its format and
layout, the architecture recognised, the tensor count, how many tensors fit that architecture
(matched / unmatched / missing / dropped classifier tensors), the input convention the weights
expect, and the file's SHA-256 (compare it with the source's).

``convert_weights`` loads a file exactly as a run would and writes a cached PyTorch copy
(``.safetensors``) whose metadata records the architecture, the module layout (``keras``: a Keras
ResNet50 stays ResNet v1) and the input convention, so that
``create_backbone(arch, init=..., weights_file=F.safetensors)`` gives the same network as the
original file, without h5py parsing or pickles.

Errors are :class:`~lgenet.errors.WeightsError`. ``lgenet weights`` (:mod:`lgenet.cli.weights`) is the
command line over this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgenet.errors import WeightsError
from lgenet.utils import atomic_path, sha256_file

__all__ = ["inspect_weights", "format_inspect", "convert_weights", "ARCHS"]

#: the backbones whose weights files can be inspected and converted
ARCHS = ("resnet50", "inception_v3")


# ----------------------------------------------------------------------------------------- inspect
def inspect_weights(path: str | Path) -> dict[str, Any]:
    """Describe a weights file (``.h5``/``.hdf5``/``.keras``, ``.pt``/``.pth``/``.bin``, ``.safetensors``).

    Returns a JSON-serialisable dict with keys ``file``, ``size_bytes``, ``sha256``, ``format``,
    ``layout``, ``keras_version``, ``architecture`` (``resnet50``/``inception_v3``/another name/None),
    ``architecture_note``, ``supported``, ``n_tensors``, ``n_params``, ``matched`` (count),
    ``unmatched``, ``missing``, ``dropped``, ``shape_errors`` (lists), ``loadable``, ``norm``
    (the input convention, a ``NORMS`` key, or a sentence when it depends on ``--init``) and ``notes``.

    Raises:
        WeightsError: the file does not exist or cannot be read at all.
    """
    from lgenet.models.weights import _is_hdf5, check_weights_path

    p = check_weights_path(path)
    rep: dict[str, Any] = {
        "file": str(p),
        "size_bytes": p.stat().st_size,
        "sha256": sha256_file(p),
        "format": None,
        "layout": None,
        "keras_version": None,
        "architecture": None,
        "architecture_note": "",
        "supported": False,
        "n_tensors": 0,
        "n_params": 0,
        "matched": 0,
        "unmatched": [],
        "missing": [],
        "dropped": [],
        "shape_errors": [],
        "loadable": False,
        "norm": None,
        "notes": [],
    }
    if p.suffix.lower() in (".h5", ".hdf5", ".keras") or _is_hdf5(p):
        _inspect_keras(p, rep)
    else:
        _inspect_torch(p, rep)
    return rep


def _inspect_keras(p: Path, rep: dict[str, Any]) -> None:
    from lgenet.models import keras_h5

    kf = keras_h5.read_keras_weights(p)
    arch, how = keras_h5.detect_keras_arch(kf)
    rep.update(
        format="keras-h5",
        layout=kf.layout,
        keras_version=kf.keras_version,
        architecture=arch,
        architecture_note=how,
        n_tensors=kf.n_tensors + len(kf.unlisted),
        n_params=kf.n_params,
        norm="keras_caffe",
    )
    candidates = [arch] if arch in keras_h5.SUPPORTED_ARCHS else ([] if arch else list(keras_h5.SUPPORTED_ARCHS))
    best = None
    for a in candidates:
        m = keras_h5.map_keras_weights(kf, a)
        if best is None or len(m.matched) > len(best.matched):
            best = m
    if best is None or not best.matched:
        rep["notes"].append(
            f"not loadable: lgenet reads keras.applications {list(keras_h5.SUPPORTED_ARCHS)} weights"
            + (f"; this file holds {arch}" if arch else "")
        )
        rep["unmatched"] = [q for layer in kf.layers.values() for q in layer.paths.values()] + kf.unlisted
        return
    rep.update(
        architecture=best.arch,
        supported=True,
        matched=len(best.matched),
        unmatched=best.unmatched,
        missing=best.missing,
        dropped=best.dropped,
        shape_errors=best.shape_errors,
        loadable=not best.problems,
    )
    rep["notes"] += best.notes + best.problems


def _inspect_torch(p: Path, rep: dict[str, Any]) -> None:
    from lgenet.models.registry import get_spec
    from lgenet.models.weights import (
        WeightsInfo,
        _drop_classifier,
        _radimagenet_pt_to_timm,
        _strip_module_prefix,
        load_state_dict_file,
        read_lgenet_metadata,
    )

    meta = read_lgenet_metadata(p)
    sd = load_state_dict_file(p)
    info = WeightsInfo(init="?", source="file")
    rep["n_tensors"] = len(sd)
    rep["n_params"] = int(sum(v.numel() for v in sd.values() if v.is_floating_point()))
    sd = _strip_module_prefix(sd, info)
    if meta:
        rep.update(format="lgenet-safetensors", layout=meta.get("lgenet_layout", "timm"))
        arch = meta.get("lgenet_arch")
        rep["architecture_note"] = "from the file's lgenet metadata"
        rep["norm"] = meta.get("lgenet_norm") or "decided by --init"
        if meta.get("lgenet_source_name"):
            info.fixups.append(
                f"converted from {meta['lgenet_source_name']} ({meta.get('lgenet_source_format')}, sha256 {meta.get('lgenet_source_sha256')})"
            )
    else:
        radimagenet = any(k.startswith("backbone.") for k in sd)
        rep["format"] = "radimagenet-pt" if radimagenet else ("safetensors" if p.suffix == ".safetensors" else "torch")
        rep["layout"] = "timm"
        keys = " ".join(sd)
        if radimagenet:
            arch = "inception_v3" if "backbone.0.conv.weight" in sd else "resnet50"
            rep["norm"] = "radimagenet_pt"
        else:
            arch = "inception_v3" if "Mixed_7c." in keys else ("resnet50" if "layer4." in keys else None)
            rep["norm"] = "imagenet or inception (--init imagenet), radimagenet_pt (--init radimagenet)"
        rep["architecture_note"] = "from the state dict's key names"
        if radimagenet and arch:
            try:
                sd = _radimagenet_pt_to_timm(sd, get_spec(arch), info)
            except WeightsError as exc:
                rep["notes"].append(str(exc))
                arch = None
    rep["architecture"] = arch
    if arch not in ARCHS:
        rep["notes"].append("no resnet50/inception_v3 state dict recognised")
        rep["unmatched"] = sorted(sd)
        return
    sd = _drop_classifier(sd, info)
    rep["dropped"] = list(info.dropped)
    import torch

    with torch.device("meta"):  # shapes and names only
        if rep["layout"] == "keras":
            from lgenet.models.keras_h5 import build_keras_layout

            own = build_keras_layout(arch).state_dict()
        else:
            own = get_spec(arch).build().state_dict()
    rep["supported"] = True
    rep["matched"] = sum(1 for k, v in sd.items() if k in own and tuple(own[k].shape) == tuple(v.shape))
    rep["unmatched"] = sorted(k for k in sd if k not in own)
    rep["missing"] = sorted(k for k in own if k not in sd and not k.endswith("num_batches_tracked"))
    rep["shape_errors"] = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in sd.items()
        if k in own and tuple(own[k].shape) != tuple(v.shape)
    ]
    rep["loadable"] = not (rep["unmatched"] or rep["missing"] or rep["shape_errors"])
    rep["notes"] += info.fixups


def format_inspect(rep: dict[str, Any], max_list: int = 8) -> str:
    """Human-readable text of an :func:`inspect_weights` report."""

    def lst(name: str) -> str:
        items = rep[name]
        more = f" ... (+{len(items) - max_list})" if len(items) > max_list else ""
        return f"{len(items)}" + (f": {', '.join(map(str, items[:max_list]))}{more}" if items else "")

    lines = [
        f"file:          {rep['file']} ({rep['size_bytes']:,} bytes)",
        f"sha256:        {rep['sha256']}",
        f"format:        {rep['format']} ({rep['layout']}"
        + (f", Keras {rep['keras_version']}" if rep.get("keras_version") else "")
        + ")",
        f"architecture:  {rep['architecture'] or 'unknown'} ({rep['architecture_note']})",
        f"tensors:       {rep['n_tensors']} ({rep['n_params']:,} parameters)",
        f"matched:       {rep['matched']}",
        f"unmatched:     {lst('unmatched')}",
        f"missing:       {lst('missing')}",
        f"dropped:       {lst('dropped')}",
    ]
    if rep["shape_errors"]:
        lines.append(f"shape errors:  {lst('shape_errors')}")
    lines += [
        f"input norm:    {rep['norm']}",
        f"loadable:      {'yes' if rep['loadable'] else 'NO'}",
    ]
    lines += [f"note:          {n}" for n in rep["notes"]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- convert
def convert_weights(path: str | Path, arch: str, out: str | Path, *, init: str | None = None) -> Path:
    """Load ``path`` for backbone ``arch`` exactly as a run would and save it as ``out`` (.safetensors).

    The metadata records ``lgenet_arch``, ``lgenet_layout`` (``keras`` or ``timm``), ``lgenet_norm``
    (when the source format fixes it: Keras h5 -> ``keras_caffe``, RadImageNet .pt ->
    ``radimagenet_pt``, or when ``init`` is given) and the source's name, format and SHA-256. The
    copy is re-loaded and compared tensor by tensor before this returns.

    Args:
        path: the weights file (any format :func:`lgenet.models.create_backbone` reads).
        arch: registry backbone name (``resnet50``, ``inception_v3``).
        out: destination, must end in ``.safetensors``; written atomically.
        init: ``imagenet`` or ``radimagenet`` when converting a plain torchvision/timm state dict,
            to record its input convention; not needed for Keras or RadImageNet files.

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    from lgenet import __version__
    from lgenet.models.registry import get_spec
    from lgenet.models.weights import load_pretrained

    src, dst = Path(path), Path(out)
    if dst.suffix != ".safetensors":
        raise WeightsError(f"--out {dst} must end in .safetensors")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise WeightsError(f"--out {dst} is the input file; choose another name")
    if init not in (None, "imagenet", "radimagenet"):
        raise WeightsError(f"unknown init {init!r}; use 'imagenet' or 'radimagenet'")
    spec = get_spec(arch)
    module, norm, info = load_pretrained(spec, init or "radimagenet", src)
    fixed_norm = info.format in ("keras-h5", "radimagenet-pt", "lgenet-safetensors") or init is not None
    meta = {
        "format": "pt",
        "lgenet_arch": arch,
        "lgenet_layout": getattr(module, "lgenet_layout", "timm"),
        "lgenet_source_name": src.name,
        "lgenet_source_format": info.format,
        "lgenet_source_sha256": info.file_sha256 or "",
        "lgenet_version": __version__,
    }
    if fixed_norm:
        meta["lgenet_norm"] = norm.name
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(dst) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        back, norm2, _ = load_pretrained(spec, init or "radimagenet", tmp)
        got = back.state_dict()
        import torch

        bad = [k for k, v in tensors.items() if k not in got or not torch.equal(got[k], v)]
        if bad or norm2.name != norm.name:
            raise WeightsError(
                f"converted copy of {src} did not load back identically ({bad[:4]}, norm {norm2.name} vs {norm.name})"
            )
    return dst


# ----------------------------------------------------------------------------------------- argparse
