"""Model bundles: a finished run as one file to hand on (``lgenet model export``, since 0.3.0).

Two kinds share one archive format (:mod:`lgenet.runs.bundle_archive`): a segmentation run's fold ensemble (this
module; used by ``segment apply --model``) and an ``lgenet run``'s chosen classifier per task
(:mod:`lgenet.runs.bundle_classifier`; used by ``predict --model``). A segmentation bundle ``NAME.lgenet`` is a
zip archive laid out as a MONAI bundle where that fits::

    configs/metadata.json    MONAI bundle metadata (version, task, description, data source, label classes,
                             network data format, intended use...) plus an "lgenet" block: the bundle format,
                             the training fingerprint and the measured performance
    configs/seg_config.yaml  the run's settings (the manifest's local path left out)
    configs/profile.json     the training stacks' intensity profile (segment apply's "unlike the training" check)
    configs/quality.json     the quality score, when the run has one
    configs/members.json     the fold models of the ensemble
    models/fold<k>.safetensors   each fold model's localiser, segmenter and coarse localiser (safetensors: no code
                             is run on loading), its network spec in the file's metadata
    docs/README.md           the model card: intended use, training data and its licence, metrics, known failure
                             modes, "research use, not a medical device"
    LICENSE.txt              the terms the training data impose on the weights (EMIDEC: CC BY-NC-SA 4.0)
    checksums.sha256         the SHA-256 of every other file

Where it differs from MONAI and why: no ``inference.json`` in MONAI's config syntax, because lgenet's inference
(localiser, coarse gate, test-time flips, plausibility and quality checks) is code, not a config graph, and the
bundle is read by :func:`open_bundle`; weights are one safetensors file per fold, not one ``model.pt``.

:func:`open_bundle` checks the archive (format version, every checksum, no file missing or added) and unpacks it
once into a cache folder laid out as a segmentation run, which ``segment apply`` then reads as it reads any run.
A hub reference ``hf://owner/repo[/file.lgenet]`` is fetched with huggingface_hub when online; offline, the
error says which file to fetch and where to put it.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from lgenet import __version__
from lgenet.errors import ConfigError, LgenetError
from lgenet.runs.bundle_archive import (
    BUNDLE_FORMAT,
    IMAGE_INPUT,
    KINDS,
    bundle_kind,
    cache_root,
    check_suffix,
    metadata_header,
    read_archive,
    read_weights,
    safetensors_metadata,
    verify_archive,
    write_archive,
)
from lgenet.runs.bundle_card import DISCLAIMER, data_source, external_summary, model_card, performance
from lgenet.runs.seg import SegRunDir
from lgenet.utils import atomic_write_text

__all__ = [
    "fetch_from_hub",
    "BUNDLE_FORMAT",
    "export_bundle",
    "open_bundle",
    "bundle_info",
    "read_metadata",
    "cache_root",
    "add_external",
    "bundle_kind_of",
    "external_summary",
]


def export_bundle(
    run: str | Path,
    out: str | Path,
    *,
    name: str | None = None,
    tasks: list[str] | None = None,
    model: str | None = None,
) -> Path:
    """Write the bundle of a finished run to ``out`` (``.lgenet``): a segmentation run's fold ensemble, or (for an
    ``lgenet run`` directory) the chosen classifier of each of ``tasks`` (default every trained task; ``model``
    names one ``ARCH/INIT``, default each task's best by out-of-fold AUC)."""
    out = check_suffix(out)
    if _is_classifier_run(Path(run)):
        from lgenet.runs.bundle_classifier import export_classifier_bundle

        return export_classifier_bundle(run, out, name=name, tasks=tasks, model=model)
    if tasks or model:
        raise ConfigError(
            f"{run} is a segmentation run: --task and --model choose a classifier of an `lgenet run` directory; "
            "a segmentation bundle holds the run's whole fold ensemble"
        )
    return _export_segmentation(run, out, name=name)


def _is_classifier_run(run: Path) -> bool:
    """An ``lgenet run`` directory (its config.yaml or metrics.json; finished or not), not a segmentation run
    (seg_config.yaml, fits/seg)."""
    if (run / SegRunDir.CONFIG_NAME).is_file() or (run / "fits" / "seg").is_dir():
        return False
    return (run / "metrics.json").is_file() or (run / "config.yaml").is_file()


def _export_segmentation(run: str | Path, out: Path, *, name: str | None = None) -> Path:
    import torch
    from safetensors.torch import save

    from lgenet.utils import source_commit

    rd = SegRunDir(run)
    cfg = rd.load_config()
    rd.check_folds(cfg)
    members = rd.members(cfg)
    files: dict[str, bytes] = {}
    compute, trained_with = "unknown compute", "unknown"
    for k in members:
        spec, loc, seg, coarse = rd.load_states(k)
        tensors = {f"localiser.{n}": t for n, t in loc.items()} | {f"segmenter.{n}": t for n, t in seg.items()}
        if coarse is not None:
            tensors |= {f"coarse_localiser.{n}": t for n, t in coarse.items()}
        tensors = {
            n: t.detach().to(torch.float32).contiguous() if t.is_floating_point() else t for n, t in tensors.items()
        }
        files[f"models/fold{k}.safetensors"] = save(tensors, metadata={"spec": json.dumps(spec), "fold": str(k)})
        fit = rd.read_json(rd.fold_dir(k) / "fit.json") or {}
        c = fit.get("compute") or {}
        if c:
            compute = f"{c.get('device', 'cpu')}, {c.get('precision', '')}, torch {c.get('torch', '')}".strip(", ")
            trained_with = str(c.get("lgenet") or trained_with)
    cfg_text = rd.config_path.read_text().replace(f"manifest: {cfg.manifest}", "manifest: ''")
    files["configs/seg_config.yaml"] = cfg_text.encode()
    files["configs/members.json"] = json.dumps({"members": members}).encode()
    for src, dst in ((rd.profile_path, "configs/profile.json"), (rd.path / "quality.json", "configs/quality.json")):
        if Path(src).is_file():
            files[dst] = Path(src).read_bytes()
    data_set, licence = data_source(cfg)
    perf = performance(rd)

    name = name or out.stem
    meta = {
        **metadata_header(name),
        "task": "LV cavity, myocardium and enhanced myocardium segmentation of LGE short-axis stacks; LGE burden",
        "description": f"lgenet segmentation ensemble of {len(members)} fold model(s) (localiser, coarse localiser, "
        "segmenter), with test-time flips, plausibility checks and a quality score",
        "data_source": data_set,
        "data_type": "nifti / dicom (LGE MR short-axis stacks)",
        "image_classes": "one channel, LGE magnitude inversion-recovery image (any intensity range: normalised inside)",
        "label_classes": {"0": "background", "1": "LV blood pool", "2": "LV myocardium", "3": "enhanced myocardium"},
        "pred_classes": {"0": "background", "1": "LV blood pool", "2": "LV myocardium", "3": "enhanced myocardium"},
        "eval_metrics": {
            "mean_dice_myocardium": (perf.get("dice_myo") or {}).get("mean"),
            "icc_lge_percent": (perf.get("lge_percent_agreement") or {}).get("icc"),
        },
        "intended_use": "Research on LGE cardiac MR: LV masks and LGE burden for cohort studies, every mask to be "
        "checked by a reader. " + DISCLAIMER,
        "references": ["Lalande et al., EMIDEC, Data 2020", "Azoulay, Mei, Fauveau et al. (the seed study of lgenet)"],
        "network_data_format": {
            "inputs": IMAGE_INPUT,
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": 4,
                    "spatial_shape": ["*", "*"],
                    "dtype": "uint8",
                    "value_range": [0, 3],
                    "is_patch_data": False,
                    "channel_def": {
                        "0": "background",
                        "1": "LV blood pool",
                        "2": "LV myocardium",
                        "3": "enhanced myocardium",
                    },
                }
            },
        },  # fmt: skip
        "lgenet": {
            "format": BUNDLE_FORMAT,
            "kind": "segmentation",
            "members": members,
            "training": {
                "data_set": data_set,
                "patients": perf.get("n"),
                "labels": "expert masks of the training manifest",
                "folds": cfg.folds,
                "seed": cfg.seed,
                "lgenet": trained_with,
                "compute": compute,
            },
            "exported_by": {"lgenet": __version__, "commit": source_commit()},
            "performance": perf,
            "external": [],
        },
    }
    files["configs/metadata.json"] = json.dumps(meta, indent=1).encode()
    files["docs/README.md"] = model_card(meta).encode()
    files["LICENSE.txt"] = (licence + "\n" + DISCLAIMER + "\n").encode()
    write_archive(out, files)
    return out


def read_metadata(path: str | Path) -> dict:
    """The checked metadata of a local bundle."""
    return json.loads(verify_archive(Path(path))[0]["configs/metadata.json"])


def bundle_info(path: str | Path) -> str:
    """The model card of a local bundle, with its file, size and licence (what ``lgenet model info`` prints)."""
    files, _ = verify_archive(Path(path))
    n = len(json.loads(files["configs/metadata.json"]).get("lgenet", {}).get("members", [])) + sum(
        len(d.get("folds", []))
        for d in json.loads(files["configs/metadata.json"]).get("lgenet", {}).get("tasks", {}).values()
    )
    size = Path(path).stat().st_size / 1e6
    return (
        f"bundle {path} ({size:.1f} MB, {len(files) + n} files, checksums verified)\n\n"
        + files["docs/README.md"].decode()
        + "\n## Licence\n"
        + files["LICENSE.txt"].decode()
    )


def fetch_from_hub(ref: str) -> Path:
    """``hf://owner/repo[/file.lgenet]`` downloaded into the cache (huggingface_hub), or a clear offline error."""
    rest = ref[len("hf://") :].strip("/")
    parts = rest.split("/")
    if len(parts) < 2:
        raise ConfigError(f"{ref}: a hub bundle is hf://owner/repo or hf://owner/repo/file.lgenet")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or "model.lgenet"
    target = cache_root() / "hub" / repo.replace("/", "--") / filename
    if target.is_file():
        return target
    url = f"https://huggingface.co/{repo}/resolve/main/{filename}"
    try:
        if os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0") or not _reachable("huggingface.co"):
            raise ConnectionError("the hub is not reachable from this machine")  # at once, not after retries
        import logging

        from huggingface_hub import hf_hub_download

        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
        got = hf_hub_download(repo_id=repo, filename=filename, cache_dir=str(cache_root() / "hf"))
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, no huggingface_hub: one clear message
        raise LgenetError(
            f"{ref}: the bundle could not be fetched from the hub ({type(exc).__name__}). Offline, fetch {url} "
            f"on a connected machine and put it at {target} (or pass its local path to --model)"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(got, target)
    return target


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host``:443 takes a connection within ``timeout`` seconds (a name that does not resolve: no)."""
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def bundle_kind_of(ref: str | Path) -> str:
    """``'segmentation'`` or ``'classifier'``: what the local bundle ``ref`` holds (its checksums checked)."""
    return bundle_kind(read_metadata(ref))


def open_bundle(ref: str | Path, *, kind: str | None = None) -> Path:
    """A run folder (in the cache) for the bundle ``ref`` (a local ``.lgenet`` file or ``hf://``), laid out as a
    segmentation run or as an ``lgenet run`` directory with the bundled models; unpacked once per archive content
    and checked every time it is opened. ``kind``: the kind the caller uses; a bundle of the other kind is refused
    with the command that takes it."""
    path = fetch_from_hub(str(ref)) if str(ref).startswith("hf://") else Path(ref)
    if not path.is_file():
        raise ConfigError(f"--model {ref}: no such bundle file")
    files, content = verify_archive(path)  # every file checked, streaming; the checksum list names the content
    meta = json.loads(files["configs/metadata.json"])
    got = bundle_kind(meta)
    if kind is not None and got != kind:
        raise ConfigError(f"--model {ref}: a {got} bundle; it is used with `{KINDS[got]} {ref}`, not here")
    dest = cache_root() / "bundles" / content[:32]
    if (dest / ".complete").is_file():
        return dest
    with zipfile.ZipFile(path) as z:
        files |= read_weights(path, [n for n in z.namelist() if n.endswith(".safetensors")])
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "bundle.json").write_bytes(files["configs/metadata.json"])
    if got == "classifier":
        from lgenet.runs.bundle_classifier import unpack_classifier

        unpack_classifier(files, tmp)
    else:
        _unpack_segmentation(files, tmp)
    (tmp / ".complete").write_text(f"unpacked by lgenet {__version__} from {path.name}\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def _unpack_segmentation(files: dict[str, bytes], tmp: Path) -> None:
    """A segmentation bundle's files as a segmentation run folder in ``tmp``."""
    import torch
    from safetensors.torch import load

    (tmp / "fits" / "seg").mkdir(parents=True)
    (tmp / SegRunDir.CONFIG_NAME).write_bytes(files["configs/seg_config.yaml"])
    for src, dst in (("configs/profile.json", "profile.json"), ("configs/quality.json", "quality.json"),
                     ("configs/members.json", "members.json")):  # fmt: skip
        if src in files:
            (tmp / dst).write_bytes(files[src])
    summary = json.loads(files["configs/metadata.json"])["lgenet"]["performance"]
    atomic_write_text(tmp / "seg_summary.json", json.dumps(summary, indent=1))
    for n, b in files.items():
        if not (n.startswith("models/fold") and n.endswith(".safetensors")):
            continue
        k = int(n[len("models/fold") : -len(".safetensors")])
        tensors = load(b)
        spec = json.loads(safetensors_metadata(b)["spec"])
        ck = {"spec": spec}
        for part in ("localiser", "segmenter", "coarse_localiser"):
            sub = {t[len(part) + 1 :]: v for t, v in tensors.items() if t.startswith(part + ".")}
            if sub:
                ck[part] = sub
        fold = tmp / "fits" / "seg" / f"fold{k}"
        fold.mkdir(parents=True)
        torch.save(ck, fold / "model.pt")


def add_external(bundle: str | Path, out: str | Path, *, label: str, evaluation: dict) -> Path:
    """A new bundle ``out``: ``bundle`` with an external evaluation added to its metadata and card (the input
    bundle is never changed)."""
    import datetime

    from lgenet.runs.bundle_card import classifier_card, classifier_external_summary

    files = read_archive(Path(bundle))
    out = check_suffix(out)
    meta = json.loads(files["configs/metadata.json"])
    seg = bundle_kind(meta) == "segmentation"
    meta["lgenet"].setdefault("external", []).append(
        {
            "label": label,
            "date": datetime.date.today().isoformat(),
            "lgenet": __version__,
            "summary": external_summary(evaluation) if seg else classifier_external_summary(evaluation),
            "evaluation": evaluation,
        }
    )
    n = len(meta["lgenet"]["external"])
    meta["version"] = f"1.0.{n}"
    meta["changelog"][meta["version"]] = f"external evaluation added: {label}"
    files["configs/metadata.json"] = json.dumps(meta, indent=1).encode()
    files["docs/README.md"] = (model_card if seg else classifier_card)(meta).encode()
    write_archive(out, files)
    return out
