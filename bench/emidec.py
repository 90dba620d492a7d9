"""The seed protocol measured on EMIDEC (issue 4, part 3): the CNN grid against the clinical
covariates-only baseline and the basal-frame ceiling.

    python bench/emidec.py                          # CPU budget: ~25-30 min on 2 idle cores, resumable
    python bench/emidec.py --threads 1              # the same on 2 cores shared with other jobs (55 min here)
    python bench/emidec.py --quick                  # 12 patients, 3 folds, 1 epoch @ 80 px: checks the script (~3 min)
    python bench/emidec.py --budget-study           # resnet50 / task lge at several epochs x px budgets
    python bench/emidec.py --weights-file resnet50:imagenet=W.pth --weights-file inception_v3:radimagenet=R.h5
                                                    # adds the pretrained rows for the files given

The full seed budget on a GPU (100 epochs, each backbone at its own input size 224 / 299), the one
prepared command::

    python bench/emidec.py --device cuda --epochs 100 --image-size 0 --out runs/bench/emidec_gpu

Measured on one H100 (2026-11-26, bf16 autocast, batch 8): ResNet50 ~35 s and InceptionV3 ~60 s
per fit (~210 / ~125 img/s: at batch 8 the step time, not the image size, sets the pace), so the
16 fits take ~13 min plus ~1 min of start-up and evaluation. Where one command may run at most
10 min, run one task per command (each ~7 min; own run directory ``..._lge`` / ``..._event``)::

    python bench/emidec.py --device cuda --epochs 100 --image-size 0 --out runs/bench/emidec_gpu --tasks lge
    python bench/emidec.py --device cuda --epochs 100 --image-size 0 --out runs/bench/emidec_gpu --tasks event

On a machine without the EMIDEC folder: first ``python bench/emidec.py --pack-basal DIR`` where the
data is (the 100 basal frames + a manifest with relative paths, ~10 MiB), carry DIR, and add
``--manifest DIR/emidec_basal.csv`` (plus the nibabel wheel where nibabel is missing). A killed run
resumes its finished fits from the run directory, also on another machine if the directory travels
(``fit.json`` + ``predictions.csv`` are enough; ``model.pt`` is not needed).

What it does, through the library API only:

1. ``import_emidec`` of ``--emidec`` into ``<out>/emidec.csv`` (done once; kept for resumption).
2. The grid with ``run_experiment``: archs resnet50 + inception_v3, init random (plus the
   ImageNet / RadImageNet rows whose weight files are given with ``--weights-file ARCH:INIT=PATH``),
   tasks lge and event, stratified 4-fold, batch 8, Adam lr 1e-3, last-epoch model; the budget is
   ``--epochs`` x ``--image-size`` (default 25 epochs at 128 px: see docs/results.md for why). The
   run directory ``<out>/run_e<E>_px<S>_<device>[_tasks][_archs]/`` resumes finished fits when the
   same command is run again. The study report that ``run_experiment`` writes at its end (CAM
   gallery + sanity checks, minutes on a CPU) is skipped unless ``--report``; ``lgenet report
   RUN_DIR`` writes it later.
3. The clinical-covariates-only logistic regression (``lgenet.outcomes.baselines.covariate_baseline``, the
   same stratified folds as the CNNs: both sort the patients and use ``StratifiedKFold(seed)``)
   and the basal-frame ceiling (``ceiling_analysis``).
4. Every model and baseline: OOF AUC with a 95 % DeLong CI and n, sensitivity / specificity /
   PPV / NPV at 0.5 with Wilson CIs, and a paired DeLong p-value of each CNN against the
   covariates-only model. Written as Markdown to stdout and ``<out>/results.md`` (the block
   pasted into docs/results.md) and as JSON to ``<out>/results.json``.

``--budget-study`` runs resnet50 / lge (4 folds) at each ``--budgets`` entry ``EPOCHS@PX`` in its
own run directory under ``<out>/budget/`` and writes ``<out>/budget_study.md`` / ``.json``.

Outputs stay under the git-ignored ``runs/``: the manifest carries EMIDEC clinical values
(CC BY-NC-SA 4.0 derived data) and the fold models are large.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lgenet.cli.options import parse_weights_args  # noqa: E402
from lgenet.config import RunConfig  # noqa: E402
from lgenet.conventions.files import import_sidecar  # noqa: E402
from lgenet.conventions.thresholds import LGE_THRESHOLD  # noqa: E402
from lgenet.data.importers import import_emidec  # noqa: E402
from lgenet.data.manifest import write_manifest  # noqa: E402
from lgenet.evaluation.metrics import auc_ci, binary_metrics, delong_test  # noqa: E402
from lgenet.models import get_spec  # noqa: E402
from lgenet.outcomes.baselines import ceiling_analysis, covariate_baseline, format_ceiling_report  # noqa: E402
from lgenet.utils import atomic_write_text  # noqa: E402

TASKS = ("lge", "event")
ARCHS = ("resnet50", "inception_v3")
DEFAULT_EPOCHS = 25
DEFAULT_PX = 128
DEFAULT_BUDGETS = "10@128,25@128,50@128"
QUICK = dict(patients=12, folds=3, epochs=1, image_size=80)  # inception_v3 needs >= 75 px


# ----------------------------------------------------------------------------------- helpers
def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _lge(row: dict[str, str], thr: float = LGE_THRESHOLD) -> int:
    return int(float(row["lge_percent"]) > thr)


def stratified_subset(rows: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    """``n`` patients, deterministic, balanced over the four (lge, event) strata.

    Event-positive strata get a third of the places (so that each task keeps >= n/3 of each class,
    enough for 3 folds); the rest is split between the event-negative strata. Within a stratum
    the first IDs in sorted order are taken.
    """
    strata: dict[tuple[int, int], list[dict[str, str]]] = {}
    for r in sorted(rows, key=lambda r: r["patient_id"]):
        strata.setdefault((_lge(r), int(r["event"])), []).append(r)
    n_ev = max(2, n // 3)
    want = {(1, 1): n_ev // 2, (0, 1): n_ev - n_ev // 2}
    rest = n - n_ev
    want[(1, 0)] = rest // 2
    want[(0, 0)] = rest - rest // 2
    out = []
    for key, k in want.items():
        avail = strata.get(key, [])
        if len(avail) < k:
            raise SystemExit(
                f"stratified_subset: stratum lge={key[0]}, event={key[1]} has {len(avail)} patients, need {k}"
            )
        out += avail[:k]
    return sorted(out, key=lambda r: r["patient_id"])


def _import(a: argparse.Namespace, out: Path) -> Path:
    """The full EMIDEC manifest (imported once into ``out``) or the one given with --manifest."""
    if a.manifest:
        return Path(a.manifest).resolve()
    manifest = out / "emidec.csv"
    if not manifest.exists():  # kept: re-importing would give the same file, but a run dir checks its hash
        import_emidec(a.emidec, manifest)
    return manifest


def pack_basal(a: argparse.Namespace) -> int:
    """Write each patient's basal frame (one-slice NIfTI, original dtype and header) and a manifest
    with relative paths into ``--pack-basal DIR``: what a machine without the EMIDEC folder needs
    to run this benchmark (``--manifest DIR/emidec_basal.csv``). The reader gives the same frame
    (``slice=basal`` of a one-slice stack is that slice). Derived EMIDEC data: CC BY-NC-SA 4.0,
    keep it under runs/ and out of the repository."""
    import nibabel as nib

    dest = Path(a.pack_basal)
    dest.mkdir(parents=True, exist_ok=True)
    full = dest / "emidec_full.csv"
    import_emidec(a.emidec, full)
    rows = _read_rows(full)
    out_rows = []
    for r in rows:
        pid = r["patient_id"]
        paths = {}
        for col in ("image", "mask"):
            src = nib.load(r[col])
            data = np.asarray(src.dataobj)
            while data.ndim > 3 and data.shape[-1] == 1:
                data = data[..., 0]
            frame = data[:, :, -1:]  # EMIDEC: slice axis 2, last index = base
            img = nib.Nifti1Image(frame, src.affine, src.header)
            name = f"{pid}_basal_{col}.nii.gz"
            nib.save(img, str(dest / name))
            paths[col] = name
        out_rows.append({**r, "image": paths["image"], "mask": paths["mask"]})
    write_manifest(dest / "emidec_basal.csv", out_rows, columns=list(rows[0].keys()))
    full.unlink()
    side = import_sidecar(full)
    if side.exists():
        side.rename(import_sidecar(dest / "emidec_basal.csv"))
    print(
        f"packed {len(out_rows)} basal frames + manifest into {dest} "
        f"({sum(f.stat().st_size for f in dest.iterdir()) / 2**20:.1f} MiB)"
    )
    return 0


def _machine(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)} (GPU), {os.cpu_count()} CPU cores"
    return f"{platform.machine()} CPU ({platform.processor() or 'cpu'}), {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _resolved_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _px_name(size: int | None) -> str:
    return f"px{size}" if size else "pxdefault"


def _run_name(epochs: int, size: int | None, device: str, tasks, archs, extra_inits: dict) -> str:
    """Run directory name: the budget and device, plus whatever differs from the default grid
    (tasks, archs and inits are part of a run's config, so another choice needs its own folder)."""
    name = f"run_e{epochs}_{_px_name(size)}_{device}"
    if tuple(tasks) != TASKS:
        name += "_" + "-".join(tasks)
    if tuple(archs) != ARCHS:
        name += "_" + "-".join(archs)
    inits = sorted({i for d in extra_inits.values() for i in d})
    if inits:
        name += "_random-" + "-".join(inits)
    return name


def _fit_stats(run_dir: Path) -> dict[str, dict[str, float]]:
    """Per (task, arch, init): summed fit seconds, mean training img/s, image size, fits done."""
    out: dict[str, dict[str, float]] = {}
    for f in sorted(run_dir.glob("fits/*/*/fold*/fit.json")):
        info = json.loads(f.read_text())
        key = f"{info['task']}|{info['arch']}/{info['init']}"
        d = out.setdefault(key, {"seconds": 0.0, "ips": [], "fits": 0, "image_size": info.get("image_size")})
        d["seconds"] += float(info.get("seconds", 0.0))
        d["ips"].append(float(info.get("train_images_per_second", float("nan"))))
        d["fits"] += 1
    for d in out.values():
        d["img_per_s"] = float(np.nanmean(d.pop("ips"))) if d["fits"] else float("nan")
    return out


def _oof(run_dir: Path) -> dict[tuple[str, str], dict[str, tuple[int, float]]]:
    res: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
    for r in _read_rows(run_dir / "oof_predictions.csv"):
        res.setdefault((r["task"], r["model"]), {})[r["patient_id"]] = (int(r["y_true"]), float(r["prob"]))
    return res


def _score_row(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    a = auc_ci(y, p, method="delong", confidence=0.95)
    b = binary_metrics(y, p, threshold=0.5)
    row = {"auc": a.auc, "auc_lower": a.lower, "auc_upper": a.upper, "n": a.n, "n_pos": a.n_pos}
    for k in ("sensitivity", "specificity", "ppv", "npv"):
        row[k], row[k + "_lower"], row[k + "_upper"] = b[k], b[k + "_lower"], b[k + "_upper"]
    row.update(tp=b["tp"], fp=b["fp"], tn=b["tn"], fn=b["fn"], brier=b["brier"])
    return row


def baselines(manifest: Path, tasks, folds: int, seed: int) -> dict[str, dict]:
    out = {}
    for task in tasks:
        r = covariate_baseline(manifest, task, folds=folds, seed=seed)
        y, p = np.asarray(r["y"]), np.asarray(r["oof_prob"])
        out[task] = {
            **_score_row(y, p),
            "covariates": r["covariates"],
            "log1p": r["log1p"],
            "patient_id": r["patient_id"],
            "prob": r["oof_prob"],
            "y": r["y"],
        }
    return out


def _f(v, nd=3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def _auc_s(r: dict) -> str:
    return f"**{_f(r['auc'])}** ({_f(r['auc_lower'])}–{_f(r['auc_upper'])})"


def _prop_s(r: dict, k: str) -> str:
    if r[k] is None or math.isnan(r[k]):  # e.g. PPV when nobody is called positive
        return "–"
    return f"{_f(r[k], 2)} ({_f(r[k + '_lower'], 2)}–{_f(r[k + '_upper'], 2)})"


# ----------------------------------------------------------------------------------- the grid
def run_grid(
    a: argparse.Namespace,
    out: Path,
    manifest: Path,
    *,
    tasks,
    archs,
    epochs: int,
    image_size: int | None,
    folds: int,
    run_dir: Path,
    extra_inits: dict,
    progress: bool,
) -> dict:
    from lgenet.workflows.grid import run_experiment

    inits = ("random",) + tuple(i for i in ("imagenet", "radimagenet") if any(i in d for d in extra_inits.values()))
    cfg = RunConfig(
        manifest=str(manifest),
        out=str(run_dir),
        tasks=tuple(tasks),
        archs=tuple(archs),
        inits=inits,
        weights=extra_inits,
        image_size=image_size,
        epochs=epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        folds=folds,
        seed=a.seed,
        device=a.device,
        precision=a.precision,
        num_threads=a.threads,
    )
    t0 = time.time()
    res = run_experiment(cfg, progress=progress, keep_models=a.keep_models, report=a.report)
    wall = time.time() - t0
    return {"cfg": cfg, "result": res, "wall_s": wall}


def grid_report(
    a, manifest: Path, run: dict, base: dict, ceiling: dict | None, *, title: str, load: tuple
) -> tuple[str, dict]:
    from lgenet.runs.compute import resolve_precision

    cfg, res = run["cfg"], run["result"]
    device = _resolved_device(cfg.device)
    precision = resolve_precision(cfg.precision, __import__("torch").device(device))
    stats = _fit_stats(res.out_dir)
    oof = _oof(res.out_dir)
    sizes = {arch: cfg.image_size or get_spec(arch).input_size for arch in cfg.archs}
    n_pat = len({r["patient_id"] for r in _read_rows(manifest)})
    fit_s = sum(s["seconds"] for s in stats.values())
    lines = [
        f"### {title}",
        "",
        f"*Command:* `{a.command}` (run directory `{_rel(res.out_dir)}`). *Machine:* {_machine(device)}"
        + (f"; {a.machine_note}" if a.machine_note else "")
        + f". *Date:* {time.strftime('%Y-%m-%d')}. "
        f"*Load average* (1 min) at start / end: {load[0]:.1f} / {load[1]:.1f}.",
        f"*Budget:* {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, input "
        + ", ".join(f"{arch} {px} px" for arch, px in sizes.items())
        + f", batch {cfg.batch_size}, Adam lr {cfg.lr:g}, {cfg.folds}-fold stratified CV (seed {cfg.seed}), "
        f"last-epoch model, device {device}, precision {precision}{' (autocast)' if precision == 'bf16' else ''}. "
        f"{n_pat} patients. Fits run now / resumed: {res.fits_run} / {res.fits_skipped}; "
        f"wall time of this invocation {run['wall_s'] / 60:.1f} min; training time summed over the fits "
        f"{fit_s / 60:.1f} min.",
        "",
        "OOF = out-of-fold (every patient scored by the fold model that never saw them). 95 % CI of the AUC: "
        "DeLong; of the proportions: Wilson. Threshold 0.5. *p vs cov.*: paired DeLong test of the model's AUC "
        "against the covariates-only model on the same patients.",
        "",
        "| task | model | n (pos) | OOF AUC (95 % CI) | sensitivity | specificity | PPV | NPV | p vs cov. | train img/s | fit time (s, all folds) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows_json = []
    for task in cfg.tasks:
        b = base.get(task)
        bmap = dict(zip(b["patient_id"], b["prob"])) if b else {}
        for m in [m for m in res.metrics if m["task"] == task]:
            pmap = oof[(task, m["model"])]
            pids = sorted(pmap)
            y = np.array([pmap[p][0] for p in pids])
            pr = np.array([pmap[p][1] for p in pids])
            row = _score_row(y, pr)
            pv = float("nan")
            if b and all(p in bmap for p in pids):
                pv = delong_test(y, pr, np.array([bmap[p] for p in pids])).p_value
            st = stats.get(f"{task}|{m['model']}", {})
            lines.append(
                f"| {task} | {m['model']} | {row['n']} ({row['n_pos']}) | {_auc_s(row)} | {_prop_s(row, 'sensitivity')} | "
                f"{_prop_s(row, 'specificity')} | {_prop_s(row, 'ppv')} | {_prop_s(row, 'npv')} | {_f(pv)} | "
                f"{_f(st.get('img_per_s', float('nan')), 1)} | {_f(st.get('seconds', float('nan')), 0)} |"
            )
            rows_json.append(
                {
                    "task": task,
                    "model": m["model"],
                    **row,
                    "p_vs_covariates": pv,
                    **{"train_img_per_s": st.get("img_per_s"), "fit_seconds": st.get("seconds")},
                }
            )
        if b:
            lines.append(
                f"| {task} | *covariates only (LR)* | {b['n']} ({b['n_pos']}) | {_auc_s(b)} | {_prop_s(b, 'sensitivity')} | "
                f"{_prop_s(b, 'specificity')} | {_prop_s(b, 'ppv')} | {_prop_s(b, 'npv')} | – | – | – |"
            )
    lines += [
        "",
        "Covariates (the logistic regression, `covariate_baseline`, same folds): "
        + "; ".join(f"{t}: {', '.join(b['covariates'])}" for t, b in base.items())
        + " (troponin, ntprobnp as log1p; killip is never used for event, which it defines).",
    ]
    if ceiling is not None:
        lines += [
            "",
            "Ceiling: the whole-LV `lge` label read from the basal frame (`ceiling_analysis`)",
            "",
            format_ceiling_report(ceiling),
        ]
    data = {
        "command": a.command,
        "machine": _machine(device),
        "machine_note": a.machine_note,
        "date": time.strftime("%Y-%m-%d"),
        "load_avg_1min": list(load),
        "run_dir": str(res.out_dir),
        "budget": {
            "epochs": cfg.epochs,
            "image_size": sizes,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "folds": cfg.folds,
            "seed": cfg.seed,
            "device": device,
            "precision": precision,
        },
        "patients": n_pat,
        "fits_run": res.fits_run,
        "fits_skipped": res.fits_skipped,
        "wall_s": run["wall_s"],
        "fit_seconds_total": fit_s,
        "models": rows_json,
        "covariate_baseline": {
            t: {k: v for k, v in b.items() if k not in ("patient_id", "prob", "y")} for t, b in base.items()
        },
        "ceiling": ceiling,
    }
    return "\n".join(lines) + "\n", data


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


# ----------------------------------------------------------------------------------- main
def parse_budgets(text: str) -> list[tuple[int, int | None]]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            e, s = part.split("@")
            out.append((int(e), int(s) or None))
        except ValueError:
            raise SystemExit(f"--budgets: {part!r} is not EPOCHS@PX (e.g. 15@128; PX 0 = the backbone's own)") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--emidec", default=str(ROOT.parent / "shared" / "data" / "emidec"), help="EMIDEC folder (used by path)"
    )
    ap.add_argument(
        "--manifest", help="an already imported EMIDEC manifest (e.g. from --pack-basal) instead of importing"
    )
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "emidec"), help="output folder (under runs/)")
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    ap.add_argument("--image-size", type=int, default=DEFAULT_PX, help="px; 0 = each backbone's own (224 / 299)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--keep-models", default="best", choices=["best", "all"])
    ap.add_argument(
        "--weights-file",
        action="append",
        metavar="ARCH:INIT=PATH",
        help="local ImageNet / RadImageNet weights; adds that init's rows (repeat per file)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['patients']} patients (stratified subset), {QUICK['folds']} folds, "
        f"{QUICK['epochs']} epoch @ {QUICK['image_size']} px: checks the script works",
    )
    ap.add_argument("--budget-study", action="store_true", help="resnet50 / lge at each --budgets entry")
    ap.add_argument("--budgets", default=DEFAULT_BUDGETS, help=f"EPOCHS@PX,... (default {DEFAULT_BUDGETS})")
    ap.add_argument("--budget-arch", default="resnet50")
    ap.add_argument("--budget-task", default="lge")
    ap.add_argument("--pack-basal", metavar="DIR", help="write the basal frames + a manifest into DIR and exit")
    ap.add_argument(
        "--report",
        action="store_true",
        help="also write each run's report.html (CAM gallery; slow on a CPU); default: skipped",
    )
    ap.add_argument("--machine-note", default="", help="free text for the machine line, e.g. 'shared with other jobs'")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    a.command = "python bench/emidec.py" + (
        ""
        if not (argv if argv is not None else sys.argv[1:])
        else " " + shlex.join(argv if argv is not None else sys.argv[1:])
    )
    if a.pack_basal:
        return pack_basal(a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = tuple(t.strip() for t in a.tasks.split(",") if t.strip())
    archs = tuple(t.strip() for t in a.archs.split(",") if t.strip())
    device = _resolved_device(a.device)
    manifest = _import(a, out)
    progress = not a.quiet

    if a.budget_study:
        return budget_study(a, out, manifest, device, progress)

    folds, epochs, size = a.folds, a.epochs, (a.image_size or None)
    title = "The grid on EMIDEC"
    if a.quick:
        qdir = out / "quick"
        qdir.mkdir(parents=True, exist_ok=True)
        sub = qdir / "emidec_quick.csv"
        if not sub.exists():
            rows = _read_rows(manifest)
            base_dir = (
                manifest.parent
            )  # relative image/mask paths (e.g. --pack-basal) are read from the manifest's folder
            picked = [
                {**r, **{c: str((base_dir / r[c]).resolve()) for c in ("image", "mask") if r.get(c)}}
                for r in stratified_subset(rows, QUICK["patients"])
            ]
            write_manifest(sub, picked, columns=list(rows[0].keys()))
        manifest, out = sub, qdir
        folds, epochs, size = QUICK["folds"], QUICK["epochs"], QUICK["image_size"]
        title = f"Quick check ({QUICK['patients']} patients; not a result)"
    extra = parse_weights_args(a.weights_file, archs, ("random", "imagenet", "radimagenet")) if a.weights_file else {}
    run_dir = out / _run_name(epochs, size, device, tasks, archs, extra)
    load0 = os.getloadavg()[0]
    base = baselines(manifest, tasks, folds, a.seed)
    ceiling = ceiling_analysis(manifest) if "lge" in tasks else None
    run = run_grid(
        a,
        out,
        manifest,
        tasks=tasks,
        archs=archs,
        epochs=epochs,
        image_size=size,
        folds=folds,
        run_dir=run_dir,
        extra_inits=extra,
        progress=progress,
    )
    text, data = grid_report(a, manifest, run, base, ceiling, title=title, load=(load0, os.getloadavg()[0]))
    atomic_write_text(out / "results.md", text)
    atomic_write_text(run_dir / "results.md", text)
    atomic_write_text(out / "results.json", json.dumps(data, indent=2, default=str) + "\n")
    print(text)
    return 0


def _reuse_grid_fits(
    out: Path, run_dir: Path, epochs: int, size: int | None, device: str, task: str, arch: str, folds: int
) -> None:
    """Copy the finished (task, arch, random) fits of the default grid at the same budget into a
    budget-study run directory, so that budget point is not trained twice. Valid because a fit
    depends only on (seed, task, arch, init, fold), the patient folds and the budget -- not on what
    else the grid holds (``_fit_seed``, a fresh network per fold) -- and the folds are checked by
    ``run_experiment`` against ``folds_<task>.csv``. model.pt is not copied (not needed)."""
    import shutil

    grid = out / _run_name(epochs, size, device, TASKS, ARCHS, {})
    if folds != 4 or not (grid / f"folds_{task}.csv").exists():
        return
    for k in range(folds):
        src = grid / "fits" / task / f"{arch}__random" / f"fold{k}"
        dst = run_dir / "fits" / task / f"{arch}__random" / f"fold{k}"
        if (src / "fit.json").exists() and not (dst / "fit.json").exists():
            dst.mkdir(parents=True, exist_ok=True)
            for name in ("predictions.csv", "fit.json"):  # fit.json last: it marks the fit done
                shutil.copy2(src / name, dst / name)


def budget_study(a, out: Path, manifest: Path, device: str, progress: bool) -> int:
    budgets = parse_budgets(a.budgets)
    task, arch = a.budget_task, a.budget_arch
    base = baselines(manifest, (task,), a.folds, a.seed)[task]
    load0 = os.getloadavg()[0]
    rows = []
    t0 = time.time()
    for epochs, size in budgets:
        run_dir = out / "budget" / f"{arch}_{task}_e{epochs}_{_px_name(size)}_{device}"
        _reuse_grid_fits(out, run_dir, epochs, size, device, task, arch, a.folds)
        run = run_grid(
            a,
            out,
            manifest,
            tasks=(task,),
            archs=(arch,),
            epochs=epochs,
            image_size=size,
            folds=a.folds,
            run_dir=run_dir,
            extra_inits={},
            progress=progress,
        )
        pmap = _oof(run_dir)[(task, f"{arch}/random")]
        pids = sorted(pmap)
        y = np.array([pmap[p][0] for p in pids])
        pr = np.array([pmap[p][1] for p in pids])
        st = _fit_stats(run_dir).get(f"{task}|{arch}/random", {})
        r = _score_row(y, pr)
        r.update(
            epochs=epochs,
            image_size=size or get_spec(arch).input_size,
            fit_seconds=st.get("seconds"),
            img_per_s=st.get("img_per_s"),
            fits_run=run["result"].fits_run,
            run_dir=_rel(run_dir),
        )
        rows.append(r)
        print(
            f"budget {epochs} epochs @ {r['image_size']} px: AUC {r['auc']:.3f} ({r['auc_lower']:.3f}-{r['auc_upper']:.3f}), "
            f"{r['fit_seconds']:.0f} s of training",
            flush=True,
        )
    load1 = os.getloadavg()[0]
    lines = [
        f"### Budget study: {arch} / {task} (random init, {a.folds}-fold, the grid's folds and fit seeds)",
        "",
        f"*Command:* `{a.command}`. *Machine:* {_machine(device)}"
        + (f"; {a.machine_note}" if a.machine_note else "")
        + f". *Date:* {time.strftime('%Y-%m-%d')}. *Load average* (1 min) at start / end: {load0:.1f} / {load1:.1f}. "
        f"Wall time {(time.time() - t0) / 60:.1f} min.",
        "",
        "| epochs | px | images seen per fit | OOF AUC (95 % CI) | n (pos) | sensitivity | specificity | PPV | NPV | train img/s | fit time (s, 4 folds) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    n_train = round(len(pids) * (a.folds - 1) / a.folds)
    for r in rows:
        lines.append(
            f"| {r['epochs']} | {r['image_size']} | {r['epochs'] * n_train} | {_auc_s(r)} | {r['n']} ({r['n_pos']}) | "
            f"{_prop_s(r, 'sensitivity')} | {_prop_s(r, 'specificity')} | {_prop_s(r, 'ppv')} | {_prop_s(r, 'npv')} | "
            f"{_f(r['img_per_s'], 1)} | {_f(r['fit_seconds'], 0)} |"
        )
    lines.append(
        f"| *covariates only (LR)* | – | – | {_auc_s(base)} | {base['n']} ({base['n_pos']}) | "
        f"{_prop_s(base, 'sensitivity')} | {_prop_s(base, 'specificity')} | {_prop_s(base, 'ppv')} | "
        f"{_prop_s(base, 'npv')} | – | – |"
    )
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "budget_study.md", text)
    atomic_write_text(
        out / "budget_study.json",
        json.dumps(
            {
                "command": a.command,
                "machine": _machine(device),
                "machine_note": a.machine_note,
                "date": time.strftime("%Y-%m-%d"),
                "load_avg_1min": [load0, load1],
                "task": task,
                "arch": arch,
                "rows": rows,
                "covariate_baseline": {k: v for k, v in base.items() if k not in ("patient_id", "prob", "y")},
            },
            indent=2,
            default=str,
        )
        + "\n",
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
