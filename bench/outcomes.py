"""Outcome models: EMIDEC fusion figures and the synthetic hazard-recovery check (issue 8 targets).

    python bench/outcomes.py --seg runs/bench/seg_v2/run                      # EMIDEC, manifest mode
    python bench/outcomes.py --seg runs/bench/seg_v2/run --run runs/bench/anatomy_v2/run   # + CNN probabilities
    python bench/outcomes.py --synthetic-only

Part A runs ``run_outcomes`` on the EMIDEC manifest of the segmentation bench for every configuration
listed in CONFIGS (all of them are reported, not only the best; the defaults were fixed before any
EMIDEC outcome was looked at). Part B draws 50 synthetic cohorts from :func:`lgenet.data.synth.tabular_cohort`
(the hazard of ``lgenet synth``) and checks that lgenet's Cox fit recovers the planted coefficients
(95 % CI coverage) and that its C-index is close to the true model's.
Writes ``<out>/results.md`` with the machine, load average and wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lgenet.outcomes import OutcomeSettings, run_outcomes  # noqa: E402
from lgenet.outcomes.measures import IMAGE_MEASURES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "default (C=1, 5 measures)": {},
    "nested C (inner 3-fold CV)": {"C": "cv"},
    "Platt recalibration": {"recalibrate": "platt"},
    "all 9 measures": {"measures": tuple(IMAGE_MEASURES)},
}


def _fmt(m) -> str:
    a = m["auc"]
    c = m["calibration"]
    return (
        f"{a['auc']:.3f} ({a['lower']:.3f}\u2013{a['upper']:.3f}) | {c['slope']:.2f} "
        f"({c['slope_lower']:.2f}\u2013{c['slope_upper']:.2f}) | {c['brier']:.3f}"
    )


def emidec(seg: str, run: str | None, out: Path, boot: int) -> list[str]:
    import yaml

    manifest = yaml.safe_load((Path(seg) / "seg_config.yaml").read_text())["manifest"]
    md = [
        "## EMIDEC (n = 100): covariates / image / fusion, out-of-fold",
        "",
        "| configuration | task | model | AUC (95 % CI) | calibration slope (95 % CI) | Brier |",
        "|---|---|---|---|---|---|",
    ]
    cmp = [
        "",
        "| configuration | task | comparison | \u0394AUC | DeLong p | continuous NRI (95 % CI) |",
        "|---|---|---|---|---|---|",
    ]
    configs = dict(CONFIGS)
    if run:
        configs["with the run's CNN probability (first grid model)"] = {"_run": True}
    for name, kw in configs.items():
        use_run = kw.pop("_run", False)
        st = OutcomeSettings(n_bootstrap=boot, **kw)
        t0 = time.time()
        s = run_outcomes(
            run if use_run else None,
            manifest=None if use_run else manifest,
            segmentation_run=seg,
            out=out / name.split(" ")[0].replace("(", ""),
            settings=st,
            progress=False,
        )
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)
        for task, t in s["tasks"].items():
            for k, m in t.get("binary", {}).get("models", {}).items():
                md.append(f"| {name} | {task} | {k} | {_fmt(m)} |")
            for c in t.get("binary", {}).get("comparisons", []):
                n = c["nri"]
                cmp.append(
                    f"| {name} | {task} | {c['a']} vs {c['b']} | {c['diff']:+.3f} | {c['p']:.3f} | "
                    f"{n['nri']:+.2f} ({n['lower']:+.2f}\u2013{n['upper']:+.2f}) |"
                )
        md.append(f"| | | columns: {', '.join(s['tasks']['event']['sets'].get('fusion', []))} | | | |")
    return (
        md
        + cmp
        + [
            "",
            "EMIDEC has no follow-up times: the Cox / C-index / Kaplan-Meier path is not run on it "
            "(outcomes.json says so) and is checked on the synthetic cohorts below.",
        ]
    )


def synthetic(n_seeds: int, sizes=(116, 500)) -> list[str]:
    from lgenet.data.synth import HAZARD, tabular_cohort
    from lgenet.evaluation.survival import c_index
    from lgenet.outcomes.fusion import cox_table, design_matrix, oof_cox

    cols = ["lge_percent", "age", "lvef"]
    truth = {"lge_percent": HAZARD["log1p_lge_percent"], "age": HAZARD["age"], "lvef": HAZARD["lvef"]}
    md = [
        "## Synthetic cohorts with a known hazard (`lgenet synth`'s model)",
        "",
        f"True log-hazard ratios: log(1 + LGE %) {truth['lge_percent']}, age {truth['age']}/year, "
        f"LVEF {truth['lvef']}/%; Weibull baseline, 20 % events, administrative censoring. {n_seeds} seeds per size.",
        "",
        "| n | coverage of the 95 % CI: LGE / age / LVEF / all | mean coefficient (LGE / age / LVEF) | "
        "C true model | C lgenet in-sample (mean abs. diff.) | C lgenet out-of-fold (mean diff.) |",
        "|---|---|---|---|---|---|",
    ]
    for n in sizes:
        cover = {c: [] for c in cols}
        est = {c: [] for c in cols}
        ct, ci, co = [], [], []
        for seed in range(n_seeds):
            d = tabular_cohort(n, seed=seed)
            pids = [str(i) for i in range(n)]
            vals = {p: {c: float(d[c][i]) for c in cols} for i, p in enumerate(pids)}
            X = design_matrix(vals, pids, cols, ["lge_percent"])
            for r in cox_table(X, d["followup_years"], d["event"], cols):
                cover[r["covariate"]].append(r["lower"] <= truth[r["covariate"]] <= r["upper"])
                est[r["covariate"]].append(r["coef"])
            Xi = np.where(np.isnan(X), np.nanmedian(X, 0), X)
            rows = cox_table(X, d["followup_years"], d["event"], cols)
            lp_in = Xi @ np.array([r["coef"] for r in rows])
            lp_oof, _ = oof_cox(X, d["followup_years"], d["event"], np.arange(n) % 4)
            t, e = d["followup_years"], d["event"]
            ct.append(c_index(t, e, d["eta"]))
            ci.append(c_index(t, e, lp_in))
            co.append(c_index(t, e, lp_oof))
        allc = np.mean([v for c in cols for v in cover[c]])
        md.append(
            f"| {n} | {' / '.join(f'{np.mean(cover[c]):.2f}' for c in cols)} / {allc:.2f} | "
            f"{' / '.join(f'{np.mean(est[c]):.3f}' for c in cols)} | {np.mean(ct):.3f} | "
            f"{np.mean(ci):.3f} ({np.mean(np.abs(np.subtract(ci, ct))):.3f}) | "
            f"{np.mean(co):.3f} ({np.mean(np.subtract(co, ct)):+.3f}) |"
        )
        print(md[-1], flush=True)
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seg", help="a finished `lgenet segment train` run on EMIDEC")
    ap.add_argument("--run", help="a finished `lgenet run` on the same manifest (CNN probabilities)")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "outcomes"))
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--synthetic-only", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, load0 = time.time(), os.getloadavg()[0]
    md = []
    if not a.synthetic_only:
        if not a.seg:
            ap.error("--seg is required (or --synthetic-only)")
        md += emidec(a.seg, a.run, out, a.bootstrap) + [""]
    md += synthetic(a.seeds)
    head = [
        f"Command: `python bench/outcomes.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; load average {load0:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end; date {time.strftime('%Y-%m-%d %H:%M %Z')}; wall time "
        f"{time.time() - t0:.0f} s",
        "",
    ]
    text = "\n".join(head + md) + "\n"
    (out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
