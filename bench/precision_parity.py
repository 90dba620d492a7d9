"""bf16 against fp32 on the CPU: the same EMIDEC grid, same folds and fit seeds, two precisions (issue 12, part 4).

    python bench/precision_parity.py                 # resnet50 / random, tasks lge + event, 25 epochs @ 128 px
    python bench/precision_parity.py --quick         # 16 patients, 2 folds, 1 epoch @ 64 px: checks the script
    python bench/precision_parity.py --seed 1 --out runs/bench/precision_s1      # another folds/fit-seed draw
    python bench/precision_parity.py --summarise runs/bench/precision,runs/bench/precision_s1,...  # across seeds

bf16 autocast may become the CPU default only if its out-of-fold AUCs on EMIDEC match fp32's within
noise. The rule, fixed before the run: for every task, the paired DeLong test of bf16 against fp32
(same patients, same folds, same fit seeds) gives p >= 0.05 **and** |AUC difference| <= 0.05. Both
arms run here, one after the other, through the library API (``run_experiment`` with ``precision``
fp32 / bf16, everything else equal), each in its own run directory under ``--out`` (resumable).

One seed's paired test cannot tell bf16's effect from the noise of a 25-epoch fit from random init
(the two arms' probabilities correlate at r ~0.5), so ``--seed`` repeats the comparison on another
draw of folds and fit seeds, and ``--summarise`` pools several seeds' ``results.json``: per task the
mean paired difference over seeds with its range, how many seeds match by the one-seed rule, and the
fp32 arm's own spread of AUC across seeds (the noise a precision change has to be compared with).
The multi-seed rule, fixed before seeds 1 and 2 ran (``runs/bench/precision_seeds/RULE.txt``): bf16
matches if, on every task, the mean paired difference over the seeds lies within +-0.03 and no seed's
paired DeLong p is below 0.05.

Printed and written to ``<out>/results.md``: per task the two AUCs with 95 % DeLong CIs and n, the
paired difference and p, how far the two arms' out-of-fold probabilities agree (Pearson r, mean
|difference|, calls that flip at 0.5), and each arm's training throughput (mean images/s of its
fits, from fit.json) and summed fit time; plus the machine, load averages and date.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lgenet.config import RunConfig  # noqa: E402
from lgenet.data.importers import import_emidec  # noqa: E402
from lgenet.evaluation.metrics import auc_ci, delong_test  # noqa: E402

ARMS = ("fp32", "bf16")
RULE_P, RULE_DIFF = 0.05, 0.05
SEEDS_RULE_MEAN = 0.03


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _manifest(a, out: Path) -> Path:
    if a.manifest:
        return Path(a.manifest)
    m = out / "emidec.csv"
    if not m.is_file():
        import_emidec(a.emidec, m)
    if not a.quick:
        return m
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from segmentation import quick_subset

    return quick_subset(m, out)


def _throughput(run: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for f in sorted(run.glob("fits/*/*/fold*/fit.json")):
        info = json.loads(f.read_text())
        d = out.setdefault(info["task"], {"seconds": 0.0, "ips": []})
        d["seconds"] += float(info.get("seconds", 0.0))
        d["ips"].append(float(info.get("train_images_per_second", float("nan"))))
    return {
        t: {"seconds": d["seconds"], "img_per_s": float(np.nanmean(d["ips"])), "fits": len(d["ips"])}
        for t, d in out.items()
    }


def compare(runs: dict[str, Path]) -> list[dict]:
    """Per (task, model): both arms' AUCs, the paired DeLong test, agreement of the probabilities."""
    oof = {
        arm: {
            (r["task"], r["model"], r["patient_id"]): (int(r["y_true"]), float(r["prob"]))
            for r in _rows(run / "oof_predictions.csv")
        }
        for arm, run in runs.items()
    }
    keys = sorted({(t, m) for t, m, _ in oof["fp32"]})
    out = []
    for task, model in keys:
        pids = sorted(p for t, m, p in oof["fp32"] if (t, m) == (task, model))
        missing = [p for p in pids if (task, model, p) not in oof["bf16"]]
        if missing:
            raise SystemExit(f"bf16 arm lacks {len(missing)} out-of-fold predictions for {task} {model}")
        y = np.array([oof["fp32"][(task, model, p)][0] for p in pids])
        p32 = np.array([oof["fp32"][(task, model, p)][1] for p in pids])
        p16 = np.array([oof["bf16"][(task, model, p)][1] for p in pids])
        a32, a16 = auc_ci(y, p32), auc_ci(y, p16)
        dt = delong_test(y, p16, p32)
        r = float(np.corrcoef(p32, p16)[0, 1]) if p32.std() > 0 and p16.std() > 0 else float("nan")
        out.append(
            {
                "task": task,
                "model": model,
                "n": int(len(y)),
                "n_pos": int(y.sum()),
                "auc_fp32": [a32.auc, a32.lower, a32.upper],
                "auc_bf16": [a16.auc, a16.lower, a16.upper],
                "diff": float(dt.diff),
                "p": float(dt.p_value),
                "pearson_r": r,
                "mean_abs_prob_diff": float(np.mean(np.abs(p32 - p16))),
                "flipped_calls": int(np.sum((p32 >= 0.5) != (p16 >= 0.5))),
                "match": bool(dt.p_value >= RULE_P and abs(dt.diff) <= RULE_DIFF),
            }
        )
    return out


def markdown(rows: list[dict], speed: dict, meta: dict) -> str:
    f = lambda v: f"{v[0]:.3f} ({v[1]:.2f}–{v[2]:.2f})"  # noqa: E731
    L = [
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; load average {meta['load'][0]:.2f} at start, {meta['load'][1]:.2f} after fp32, "
        f"{meta['load'][2]:.2f} at end; {meta['date']}; wall fp32 {meta['wall']['fp32']:.0f} s, "
        f"bf16 {meta['wall']['bf16']:.0f} s",
        "",
        "| task | model | n (+) | AUC fp32 | AUC bf16 | bf16 − fp32 (paired DeLong p) | r of probabilities | "
        "mean abs. prob. diff | calls flipped at 0.5 | matches (p ≥ 0.05, abs. diff ≤ 0.05) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        L.append(
            f"| {r['task']} | {r['model']} | {r['n']} ({r['n_pos']}) | {f(r['auc_fp32'])} | {f(r['auc_bf16'])} | "
            f"{r['diff']:+.3f} (p {r['p']:.2f}) | {r['pearson_r']:.3f} | {r['mean_abs_prob_diff']:.3f} | "
            f"{r['flipped_calls']} | {'yes' if r['match'] else '**no**'} |"
        )
    L += [
        "",
        "| task | fp32 img/s (fits) | bf16 img/s | speed-up | fp32 fit s | bf16 fit s |",
        "|---|---|---|---|---|---|",
    ]
    for t in sorted(speed["fp32"]):
        s32, s16 = speed["fp32"][t], speed["bf16"].get(t, {})
        L.append(
            f"| {t} | {s32['img_per_s']:.2f} ({s32['fits']}) | {s16.get('img_per_s', float('nan')):.2f} | "
            f"{s16.get('img_per_s', float('nan')) / s32['img_per_s']:.2f}× | {s32['seconds']:.0f} | "
            f"{s16.get('seconds', float('nan')):.0f} |"
        )
    verdict = all(r["match"] for r in rows)
    L += [
        "",
        f"Verdict by the rule fixed in advance: bf16 {'matches' if verdict else 'does **not** match'} fp32 "
        f"on every task.",
    ]
    return "\n".join(L)


def summarise(dirs: list[Path]) -> tuple[list[dict], str]:
    """Pool several seeds' results.json (same tasks and models) into the multi-seed comparison."""
    per: dict[tuple[str, str], list[dict]] = {}
    seeds = []
    for d in dirs:
        f = Path(d) / "results.json"
        if not f.is_file():
            raise SystemExit(f"{f} not found: run bench/precision_parity.py --out {d} first")
        res = json.loads(f.read_text())
        seeds.append(res["meta"].get("seed", 0))
        for r in res["rows"]:
            per.setdefault((r["task"], r["model"]), []).append(r)
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"the runs to summarise share a seed ({seeds}): give one run per seed")
    rows = []
    for (task, model), rs in sorted(per.items()):
        if len(rs) != len(dirs):
            raise SystemExit(f"{task} {model}: present in {len(rs)} of {len(dirs)} runs")
        diffs = np.array([r["diff"] for r in rs])
        a32 = np.array([r["auc_fp32"][0] for r in rs])
        a16 = np.array([r["auc_bf16"][0] for r in rs])
        rows.append(
            {
                "task": task,
                "model": model,
                "seeds": seeds,
                "n": rs[0]["n"],
                "n_pos": rs[0]["n_pos"],
                "auc_fp32": a32.tolist(),
                "auc_bf16": a16.tolist(),
                "diffs": diffs.tolist(),
                "mean_diff": float(diffs.mean()),
                "min_p": float(min(r["p"] for r in rs)),
                "fp32_sd": float(a32.std(ddof=1)) if len(a32) > 1 else float("nan"),
                "seeds_matching": int(sum(r["match"] for r in rs)),
                "match": bool(abs(diffs.mean()) <= SEEDS_RULE_MEAN and min(r["p"] for r in rs) >= RULE_P),
            }
        )
    L = [
        f"Seeds {', '.join(str(s) for s in seeds)} ({', '.join(str(d) for d in dirs)})",
        "",
        "| task | model | n (+) | AUC fp32 per seed | AUC bf16 per seed | bf16 − fp32 per seed | mean | "
        "smallest paired p | SD of fp32 AUC across seeds | seeds matching (one-seed rule) | matches "
        f"(abs. mean ≤ {SEEDS_RULE_MEAN}, every p ≥ {RULE_P}) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    j = lambda v: " / ".join(f"{x:.3f}" for x in v)  # noqa: E731
    for r in rows:
        L.append(
            f"| {r['task']} | {r['model']} | {r['n']} ({r['n_pos']}) | {j(r['auc_fp32'])} | {j(r['auc_bf16'])} | "
            f"{' / '.join(f'{x:+.3f}' for x in r['diffs'])} | {r['mean_diff']:+.3f} | {r['min_p']:.2f} | "
            f"{r['fp32_sd']:.3f} | {r['seeds_matching']} of {len(seeds)} | {'yes' if r['match'] else '**no**'} |"
        )
    verdict = all(r["match"] for r in rows)
    L += [
        "",
        f"Verdict by the multi-seed rule fixed in advance: bf16 {'matches' if verdict else 'does **not** match'} "
        f"fp32 on every task.",
    ]
    return rows, "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emidec", default=str(ROOT.parent / "shared" / "data" / "emidec"))
    ap.add_argument("--manifest", help="an already imported EMIDEC manifest")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "precision"))
    ap.add_argument("--archs", default="resnet50")
    ap.add_argument("--tasks", default="lge,event")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    ap.add_argument("--executor", default="process", choices=["local", "process"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help="the run's seed: folds and fit seeds (both arms share it)")
    ap.add_argument(
        "--summarise",
        metavar="DIR,DIR,...",
        help="pool finished runs (one per seed) instead of training; writes <out>/results.md",
    )
    a = ap.parse_args(argv)
    if a.summarise:
        rows, md = summarise([Path(d) for d in a.summarise.split(",") if d])
        print(md)
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(md + "\n")
        (out / "results.json").write_text(json.dumps({"rows": rows}, indent=1))
        return 0
    if not a.manifest and not Path(a.emidec).is_dir():
        raise SystemExit(f"EMIDEC folder {a.emidec} not found: give --emidec DIR or --manifest CSV")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(a, out)
    epochs, size, folds = (1, 64, 2) if a.quick else (a.epochs, a.image_size, 4)
    from lgenet.workflows.grid import run_experiment

    meta = {
        "command": "python bench/precision_parity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {a.threads} torch thread(s) per fit, "
        f"executor {a.executor} x {a.workers}",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load": [os.getloadavg()[0]],
        "wall": {},
        "seed": a.seed,
    }
    runs = {}
    for arm in ARMS:
        cfg = RunConfig(
            manifest=str(manifest),
            out=str(out / arm),
            tasks=tuple(a.tasks.split(",")),
            archs=tuple(a.archs.split(",")),
            inits=("random",),
            epochs=epochs,
            image_size=size,
            folds=folds,
            device="cpu",
            precision=arm,
            num_threads=a.threads,
            outcomes=False,
            seed=a.seed,
        )
        t0 = time.time()
        run_experiment(cfg, progress=True, report=False, keep_models="none", executor=a.executor, workers=a.workers)
        meta["wall"][arm] = time.time() - t0
        meta["load"].append(os.getloadavg()[0])
        runs[arm] = Path(cfg.out)
    rows = compare(runs)
    speed = {arm: _throughput(run) for arm, run in runs.items()}
    md = markdown(rows, speed, meta)
    print(md)
    (out / "results.md").write_text(md + "\n")
    (out / "results.json").write_text(json.dumps({"rows": rows, "speed": speed, "meta": meta}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
