"""The other-centre check of a finished EMIDEC segmentation run: every fold model on its held-out patients, as
acquired, under each proxy of another centre's stacks and under the older domain shifts, with the quality score.

    python bench/centre_check.py --run runs/bench/seg/run --out runs/bench/seg/centre
    python bench/centre_check.py --run runs/bench/seg/run --limit 12     # a few patients: checks the script

Per condition (one seeded draw per patient): myocardium Dice (mean, median, bootstrap 95 % CI, n), hearts found
(Dice >= 0.5), hearts missed (Dice < 0.15) and how many of them were refused as `segment apply` refuses them (an
implausible LV mask, or a predicted Dice below the score's refuse_below: no measure; both counted since 0.3.0, the
plausibility refusals also apart), LGE % agreement (ICC, bias, limits of agreement) and AUC for LGE > 5.7 % over
the masks that give a measure, and
how the quality score flags the masks: its score is cross-fitted (the rows of fold k scored by a regression
fitted on the other folds' rows of the conditions `segment train` fits on, lgenet.segment.quality_fit), and a mask
is flagged below the threshold fixed in lgenet.segment.quality. The run's own quality.json is (re)fitted from the
same rows when it is missing. Markdown to stdout and <out>/centre.md, JSON and the rows to <out>/.

    python bench/centre_check.py --rows runs/bench/seg/centre/centre_rows.csv --out DIR   # summarise rows again
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lgenet.data.centre_shift import CENTRE_SHIFTS  # noqa: E402
from lgenet.evaluation.metrics import auc_ci  # noqa: E402
from lgenet.evaluation.segmentation import agreement  # noqa: E402
from lgenet.runs.tables import write_rows  # noqa: E402
from lgenet.segment.quality import QUALITY_FILE, REFUSE_BELOW  # noqa: E402
from lgenet.segment.quality_fit import cross_fitted, fit_run_quality, flag_rates, quality_rows  # noqa: E402


def _older_shifts() -> dict:
    """bench/segmentation.py's domain shifts (offset, rescale, 0.7 mm, rotation, flip, 380 mm, all) in the
    quality rows' form."""
    from segmentation import transforms

    def wrap(f):
        return lambda img, cls, sp, smm, rng: (*f(img, cls, sp, rng), smm)

    return {name: wrap(f) for name, f in transforms().items()}


def _boot_ci(v: np.ndarray, n_boot: int = 2000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    means = [rng.choice(v, v.size).mean() for _ in range(n_boot)] if v.size else []
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))] if means else [np.nan, np.nan]


def summarise(rows: list[dict], lge_threshold: float = 5.7, refuse_below: float = REFUSE_BELOW) -> dict:
    """One condition's figures. A mask is measured as `segment apply` measures it: plausible, and with a (cross-fitted)
    predicted Dice of at least ``refuse_below``; the others are refused."""
    d = np.array([r["dice_myo"] for r in rows], float)
    plausible = np.array([bool(int(float(r["plausible"]))) for r in rows])
    score = np.array([float(r["quality_dice"]) for r in rows], float)
    measured = plausible & ~(score < refuse_below)
    pred = np.array([r["lge_percent_pred"] for r in rows], float)
    ref = np.array([r["lge_percent_expert"] for r in rows], float)
    missed = d < 0.15
    out = {
        "n": len(rows),
        "refuse_below": refuse_below,
        "dice_myo_mean": float(d.mean()),
        "dice_myo_median": float(np.median(d)),
        "dice_myo_ci": _boot_ci(d),
        "found": int((d >= 0.5).sum()),
        "missed": int(missed.sum()),
        "missed_refused": int((missed & ~measured).sum()),
        "missed_implausible": int((missed & ~plausible).sum()),
        "misses_measured": int((missed & measured).sum()),
        "not_found_measured": int(((d < 0.5) & measured).sum()),
        "refused": int((~measured).sum()),
        "refused_implausible": int((~plausible).sum()),
        "refused_with_dice_ge_0.5": int((~measured & (d >= 0.5)).sum()),
        "agreement": agreement(pred[measured], ref[measured]),
    }
    y = (ref > lge_threshold).astype(int)
    ok = measured & np.isfinite(pred) & np.isfinite(ref)
    try:
        a = auc_ci(y[ok], pred[ok])
        out["auc"] = {"auc": a.auc, "lower": a.lower, "upper": a.upper, "n": a.n, "n_pos": a.n_pos}
    except Exception as exc:  # noqa: BLE001 - one class only under a proxy: say so
        out["auc"] = {"error": str(exc)}
    out["flag"] = flag_rates(rows)
    return out


def markdown(res: dict, meta: dict) -> str:
    L = [
        f"Command: `{meta['command']}`  ",
        f"Run: `{meta['run']}` (lgenet {meta['lgenet']}; localiser composites `loc_thorax` = {meta['loc_thorax']} for "
        f"{meta['loc_thorax_nets']})  ",
        f"Machine: {meta['machine']}; {meta['threads']} torch thread(s); load {meta['load_start']:.2f} at the start, "
        f"{meta['load_end']:.2f} at the end; {meta['wall_s'] / 60:.1f} min; {meta['date']}"
        + (f"; draw {meta['draw']} of the proxies" if meta.get("draw") else ""),
        "",
        "Refused: no measure, as `segment apply` refuses (implausible, or a cross-fitted predicted Dice below "
        f"{next(iter(res.values()))['refuse_below']}); ICC, limits and AUC over the measured masks.",
        "",
        "| condition | n | myocardium Dice mean (95 % CI) / median | found (≥ 0.5) | missed (< 0.15), of them refused | "
        "not found (< 0.5) but measured | refused in all (implausible; of them Dice ≥ 0.5) | LGE % ICC, LoA (measured "
        "masks) | AUC LGE > 5.7 % | flagged: Dice < 0.6 / Dice ≥ 0.75 | score vs Dice (Spearman) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in res.items():
        a = s["agreement"]
        icc = (
            f"{a['icc']:.3f}, {a['loa_lower']:+.1f} to {a['loa_upper']:+.1f} pp"
            if a.get("icc") is not None and a.get("loa_lower") is not None
            else "n/a"
        )
        auc = s["auc"]
        auct = f"{auc['auc']:.3f} ({auc['lower']:.3f}–{auc['upper']:.3f}), n={auc['n']}" if "auc" in auc else "n/a"
        f = s["flag"]

        def share(v, n):
            return "n/a" if v is None else f"{v:.0%} of {n}"

        L.append(
            f"| {name} | {s['n']} | {s['dice_myo_mean']:.3f} ({s['dice_myo_ci'][0]:.3f}–{s['dice_myo_ci'][1]:.3f}) / "
            f"{s['dice_myo_median']:.3f} | {s['found']} | {s['missed']}, {s['missed_refused']} | "
            f"{s['not_found_measured']} | {s['refused']} ({s['refused_implausible']}; {s['refused_with_dice_ge_0.5']}) | "
            f"{icc} | {auct} | {share(f['bad_flagged'], f['n_bad'])} / "
            f"{share(f['good_flagged'], f['n_good'])} | {f['spearman']:.2f} |"
        )
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a finished segmentation run on EMIDEC")
    ap.add_argument("--rows", help="instead of --run: a centre_rows.csv written before, summarised again")
    ap.add_argument("--out", help="where the results go (default: <run>/../centre)")
    ap.add_argument("--limit", type=int, help="only the first N patients (a check of the script)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--threads", type=int, help="torch threads")
    ap.add_argument(
        "--older",
        choices=("none", "all-at-once", "each"),
        default="all-at-once",
        help="the older domain shifts of bench/segmentation.py: none, only all of them at once (default), or each",
    )
    ap.add_argument(
        "--draw",
        type=int,
        default=0,
        help="which seeded draw of the proxies (0: the one every score and bench has used; k > 0: another, "
        "independent set for the same patients)",
    )
    a = ap.parse_args(argv)
    if bool(a.run) == bool(a.rows):
        ap.error("give --run RUN (apply and score) or --rows CENTRE_ROWS.csv (summarise rows again), not both")
    if a.rows:
        return _summarise_rows(Path(a.rows), Path(a.out) if a.out else Path(a.rows).parent, argv)
    import torch

    from lgenet import __version__
    from lgenet.runs.seg import SegRunDir

    if a.threads:
        torch.set_num_threads(a.threads)
    run = Path(a.run)
    out = Path(a.out) if a.out else run.parent / "centre"
    out.mkdir(parents=True, exist_ok=True)
    cfg = SegRunDir(run).load_config()
    meta = {
        "command": "python bench/centre_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "run": str(run),
        "lgenet": __version__,
        "loc_thorax": getattr(cfg, "loc_thorax", 0.0),
        "loc_thorax_nets": getattr(cfg, "loc_thorax_nets", "both"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "threads": torch.get_num_threads(),
        "load_start": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "draw": a.draw,
    }
    t0 = time.time()
    older = {} if a.older == "none" else _older_shifts()
    if a.older == "all-at-once":
        older = {"older shifts, all at once": older["all at once"]}
    names = ["as acquired", *CENTRE_SHIFTS, *older]
    rows = quality_rows(run, conditions=names, extra=older, limit=a.limit, progress=not a.no_progress, draw=a.draw)
    if not (run / QUALITY_FILE).is_file() and not a.limit:
        fit_run_quality(run, rows=rows)
    scored = cross_fitted(rows)
    res = {name: summarise([r for r in scored if r["condition"] == name], cfg.lge_threshold) for name in names}
    meta["wall_s"] = time.time() - t0
    meta["load_end"] = os.getloadavg()[0]
    md = markdown(res, meta)
    print(md)
    (out / "centre.md").write_text(md + "\n")
    (out / "centre.json").write_text(json.dumps({"meta": meta, "conditions": res}, indent=1, default=float))
    write_rows(out / "centre_rows.csv", scored, list(scored[0]))
    return 0


def run_meta(script: str, argv, threads: int, t0: float, load0: float) -> dict:
    """What a bench run records of itself: its command, lgenet's version, the machine and its load, the time."""
    from lgenet import __version__

    return {
        "command": f"python bench/{script} " + " ".join(argv if argv is not None else sys.argv[1:]),
        "lgenet": __version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {threads} torch threads",
        "load_start": load0,
        "load_end": os.getloadavg()[0],
        "wall_s": time.time() - t0,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def read_rows(path: Path) -> list[dict]:
    """The rows of a centre_rows.csv, numbers as floats (an empty cell, a mask with no myocardium's burden: NaN)."""
    import csv

    def num(v: str) -> float:
        return float(v) if v != "" else float("nan")

    with open(path, newline="") as fh:
        return [
            {k: (v if k in ("patient_id", "condition") else num(v)) for k, v in r.items()} for r in csv.DictReader(fh)
        ]


def _summarise_rows(rows_csv: Path, out: Path, argv) -> int:
    """centre_summary.md/.json in ``out`` from the rows of an earlier check (no network runs)."""
    from lgenet import __version__
    from lgenet.conventions.thresholds import LGE_THRESHOLD

    rows = read_rows(rows_csv)
    names = list(dict.fromkeys(r["condition"] for r in rows))
    res = {name: summarise([r for r in rows if r["condition"] == name], LGE_THRESHOLD) for name in names}
    meta = {
        "command": "python bench/centre_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "run": f"the rows of {rows_csv}",
        "lgenet": __version__,
        "loc_thorax": "as recorded",
        "loc_thorax_nets": "the run of those rows",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "threads": 0,
        "load_start": os.getloadavg()[0],
        "load_end": os.getloadavg()[0],
        "wall_s": 0.0,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(res, meta)
    print(md)
    (out / "centre_summary.md").write_text(md + "\n")
    (out / "centre_summary.json").write_text(json.dumps({"meta": meta, "conditions": res}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
