"""Model bundles: a finished segmentation run as one file to hand on (``lgenet model export``, since 0.3.0).

A bundle ``NAME.lgenet`` is a zip archive laid out as a MONAI bundle where that fits::

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

import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

from lgenet import __version__
from lgenet.errors import ConfigError, LgenetError
from lgenet.runs.bundle_card import DISCLAIMER, data_source, external_summary, model_card, performance
from lgenet.runs.seg import SegRunDir
from lgenet.utils import atomic_path, atomic_write_text

__all__ = [
    "fetch_from_hub",
    "BUNDLE_FORMAT",
    "export_bundle",
    "open_bundle",
    "bundle_info",
    "read_metadata",
    "cache_root",
]

#: the bundle layout version this lgenet writes and reads; a bundle of a later format is refused
BUNDLE_FORMAT = 1
SUFFIX = ".lgenet"


def cache_root() -> Path:
    """Where bundles are unpacked (and hub downloads kept): ``$LGENET_CACHE`` or ``~/.cache/lgenet``."""
    return Path(os.environ.get("LGENET_CACHE") or Path.home() / ".cache" / "lgenet")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_bundle(run: str | Path, out: str | Path, *, name: str | None = None) -> Path:
    """Write the bundle of the finished segmentation run ``run`` to ``out`` (``.lgenet``)."""
    import torch
    from safetensors.torch import save

    from lgenet.utils import source_commit

    rd = SegRunDir(run)
    cfg = rd.load_config()
    rd.check_folds(cfg)
    members = rd.members(cfg)
    out = Path(out)
    if out.suffix != SUFFIX:
        raise ConfigError(f"--out {out}: a bundle's file name ends in {SUFFIX}")
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
    import monai
    import numpy

    name = name or out.stem
    meta = {
        "name": name,
        "version": "1.0.0",
        "changelog": {"1.0.0": f"exported by lgenet {__version__}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "required_packages_version": {"lgenet": __version__},
        "task": "LV cavity, myocardium and enhanced myocardium segmentation of LGE short-axis stacks; LGE burden",
        "description": f"lgenet segmentation ensemble of {len(members)} fold model(s) (localiser, coarse localiser, "
        "segmenter), with test-time flips, plausibility checks and a quality score",
        "authors": "exported with lgenet",
        "copyright": "see LICENSE.txt",
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
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": 1,
                    "spatial_shape": ["*", "*"],
                    "dtype": "float32",
                    "value_range": ["*", "*"],
                    "is_patch_data": False,
                    "channel_def": {"0": "image"},
                }
            },
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
    _write_archive(out, files)
    return out


def _write_archive(out: Path, files: dict[str, bytes]) -> None:
    sums = "".join(f"{_sha(b)}  {n}\n" for n, b in sorted(files.items()))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as z:
        for n, b in sorted(files.items()):
            z.writestr(n, b, compress_type=zipfile.ZIP_STORED if n.endswith(".safetensors") else zipfile.ZIP_DEFLATED)
        z.writestr("checksums.sha256", sums)


def _read_archive(path: Path, raw: bytes | None = None) -> dict[str, bytes]:
    """Every file of a bundle, checked against its checksums: refused by name when one differs, is missing or was
    added, and when the bundle's format is newer than this lgenet reads."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw) if raw is not None else path) as z:
            files = {n: z.read(n) for n in z.namelist() if not n.endswith("/")}
    except (zipfile.BadZipFile, OSError) as exc:
        raise LgenetError(f"{path}: not a readable lgenet bundle ({exc})") from None
    if "checksums.sha256" not in files or "configs/metadata.json" not in files:
        raise LgenetError(f"{path}: not an lgenet bundle (no checksums.sha256 or configs/metadata.json)")
    listed = {}
    for line in files.pop("checksums.sha256").decode().splitlines():
        if line.strip():
            digest, name = line.split(None, 1)
            listed[name.strip()] = digest
    missing = sorted(set(listed) - set(files))
    added = sorted(set(files) - set(listed))
    changed = sorted(n for n in set(listed) & set(files) if _sha(files[n]) != listed[n])
    if missing or added or changed:
        parts = [
            f"{w}: {', '.join(v)}" for w, v in (("missing", missing), ("not listed", added), ("altered", changed)) if v
        ]
        raise LgenetError(
            f"{path}: the bundle fails its checksums ({'; '.join(parts)}); get an intact copy from its author"
        )
    meta = json.loads(files["configs/metadata.json"])
    fmt = int((meta.get("lgenet") or {}).get("format", 0))
    if fmt > BUNDLE_FORMAT or fmt < 1:
        raise LgenetError(
            f"{path}: bundle format {fmt}, written by lgenet {meta.get('required_packages_version', {}).get('lgenet')}; "
            f"this lgenet {__version__} reads format {BUNDLE_FORMAT}: upgrade lgenet"
        )
    for k in meta["lgenet"].get("members", []):
        if f"models/fold{k}.safetensors" not in files:
            raise LgenetError(f"{path}: the bundle lists fold model {k} but holds no models/fold{k}.safetensors")
    return files


def read_metadata(path: str | Path) -> dict:
    """The checked metadata of a local bundle."""
    return json.loads(_read_archive(Path(path))["configs/metadata.json"])


def bundle_info(path: str | Path) -> str:
    """The model card of a local bundle, with its file, size and licence (what ``lgenet model info`` prints)."""
    files = _read_archive(Path(path))
    size = Path(path).stat().st_size / 1e6
    return (
        f"bundle {path} ({size:.1f} MB, {len(files)} files, checksums verified)\n\n"
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


def open_bundle(ref: str | Path) -> Path:
    """A segmentation run folder (in the cache) for the bundle ``ref`` (a local ``.lgenet`` file or ``hf://``),
    unpacked once per archive content and checked every time it is opened from its archive."""
    import torch
    from safetensors.torch import load

    path = fetch_from_hub(str(ref)) if str(ref).startswith("hf://") else Path(ref)
    if not path.is_file():
        raise ConfigError(f"--model {ref}: no such bundle file")
    raw = path.read_bytes()  # read once: its hash names the cache folder, its files are checked
    files = _read_archive(path, raw)
    dest = cache_root() / "bundles" / _sha(raw)[:32]
    if (dest / ".complete").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "fits" / "seg").mkdir(parents=True)
    (tmp / SegRunDir.CONFIG_NAME).write_bytes(files["configs/seg_config.yaml"])
    for src, dst in (("configs/profile.json", "profile.json"), ("configs/quality.json", "quality.json"),
                     ("configs/members.json", "members.json"), ("configs/metadata.json", "bundle.json")):  # fmt: skip
        if src in files:
            (tmp / dst).write_bytes(files[src])
    summary = json.loads(files["configs/metadata.json"])["lgenet"]["performance"]
    atomic_write_text(tmp / "seg_summary.json", json.dumps(summary, indent=1))
    for n, b in files.items():
        if not (n.startswith("models/fold") and n.endswith(".safetensors")):
            continue
        k = int(n[len("models/fold") : -len(".safetensors")])
        tensors = load(b)
        spec = json.loads(_safetensors_metadata(b)["spec"])
        ck = {"spec": spec}
        for part in ("localiser", "segmenter", "coarse_localiser"):
            sub = {t[len(part) + 1 :]: v for t, v in tensors.items() if t.startswith(part + ".")}
            if sub:
                ck[part] = sub
        fold = tmp / "fits" / "seg" / f"fold{k}"
        fold.mkdir(parents=True)
        torch.save(ck, fold / "model.pt")
    (tmp / ".complete").write_text(f"unpacked by lgenet {__version__} from {path.name}\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def _safetensors_metadata(b: bytes) -> dict:
    """The ``__metadata__`` of a safetensors file's header (8-byte little-endian length, then JSON)."""
    n = int.from_bytes(b[:8], "little")
    return json.loads(b[8 : 8 + n]).get("__metadata__") or {}


def add_external(bundle: str | Path, out: str | Path, *, label: str, evaluation: dict) -> Path:
    """A new bundle ``out``: ``bundle`` with an external evaluation added to its metadata and card (the input
    bundle is never changed)."""
    import datetime

    files = _read_archive(Path(bundle))
    out = Path(out)
    if out.suffix != SUFFIX:
        raise ConfigError(f"--out {out}: a bundle's file name ends in {SUFFIX}")
    meta = json.loads(files["configs/metadata.json"])
    meta["lgenet"].setdefault("external", []).append(
        {
            "label": label,
            "date": datetime.date.today().isoformat(),
            "lgenet": __version__,
            "summary": external_summary(evaluation),
            "evaluation": evaluation,
        }
    )
    n = len(meta["lgenet"]["external"])
    meta["version"] = f"1.0.{n}"
    meta["changelog"][meta["version"]] = f"external evaluation added: {label}"
    files["configs/metadata.json"] = json.dumps(meta, indent=1).encode()
    files["docs/README.md"] = model_card(meta).encode()
    _write_archive(out, files)
    return out
