"""``lgenet outcomes`` (wired in by :mod:`lgenet.cli`; imports the analysis only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lgenet.cli.options import csv_list
from lgenet.config import OutcomeSettings
from lgenet.settings import add_options, values_from_args

__all__ = ["add_outcomes_parser"]


def _cmd_outcomes(a: argparse.Namespace) -> int:
    from lgenet.outcomes import run_outcomes
    from lgenet.runs.grid import RunDir

    over = values_from_args(a, OutcomeSettings)
    if a.run_dir:
        cfg = RunDir(a.run_dir).load_config()
        settings = OutcomeSettings.from_run_config(cfg, **over)
    else:
        settings = OutcomeSettings(**over)
    s = run_outcomes(
        a.run_dir,
        manifest=a.manifest,
        segmentation_run=a.segmentation_run,
        out=a.out,
        settings=settings,
        tasks=a.tasks,
        progress=not a.quiet,
    )
    out = Path(a.out) if a.out else Path(a.run_dir) / "outcomes"
    for task, t in s["tasks"].items():
        b = t.get("binary")
        if not b:
            print(f"{task}: nothing fitted ({'; '.join(t.get('skipped', {}).values())})")
            continue
        for name, m in b["models"].items():
            au = m["auc"]
            c = m["calibration"]
            print(
                f"{task:6s} {name:10s} AUC {au['auc']:.3f} ({au['lower']:.3f}-{au['upper']:.3f}) n={au['n']} "
                f"({au['n_pos']}+)  calibration slope {c['slope']:.2f} ({c['slope_lower']:.2f}-{c['slope_upper']:.2f})"
            )
        for cmp in b["comparisons"]:
            print(f"{'':6s} {cmp['a']} vs {cmp['b']}: dAUC {cmp['diff']:+.3f}, DeLong p = {cmp['p']:.3f}")
        sv = t.get("survival") or {}
        for name, m in sv.get("models", {}).items():
            ci = m["c_index"]
            print(
                f"{task:6s} {name:10s} Cox C-index {ci['c_index']:.3f} ({ci['lower']:.3f}-{ci['upper']:.3f}) "
                f"n={ci['n']} ({ci['n_events']} events)"
            )
        for name, why in sv.get("skipped", {}).items():
            print(f"{task:6s} {name:10s} Cox model failed: {why}")
        if "not_fitted" in sv:
            print(f"{task:6s} time-to-event: {sv['not_fitted']}")
    print(f"outcomes: {out / 'outcomes.json'} (figures in {out / 'figures'})")
    if a.run_dir and not a.out and not a.no_report and (Path(a.run_dir) / "report.html").is_file():
        from lgenet.report import write_report

        print(f"report  : {write_report(a.run_dir)}")
    return 0


def add_outcomes_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``lgenet outcomes`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "outcomes",
        help="covariates / image / fusion outcome models of a finished run (no CNN is retrained)",
        description="Fits, in the run's patient folds, a covariates-only, an image-only (segmentation measures, "
        "CNN probability) and a fusion model per task: penalised logistic regression for the binary "
        "label and, when the manifest has followup_years, Cox regression. Reports AUC, calibration, "
        "decision curves, C-index, time-dependent AUC and Kaplan-Meier risk groups in "
        "RUN_DIR/outcomes and in report.html. Without a run: --manifest and --out.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?", help="the --out directory of `lgenet run`")
    p.add_argument("--manifest", help="cohort CSV (without RUN_DIR; or when the run's manifest has moved)")
    p.add_argument("--segmentation-run", help="`lgenet segment train`/`segment apply` output (default: the run's)")
    p.add_argument("--out", help="output folder (default RUN_DIR/outcomes)")
    p.add_argument("--tasks", type=csv_list, help="tasks to analyse (default: the run's)")
    add_options(p, OutcomeSettings)
    p.add_argument("--no-report", action="store_true", help="do not rewrite RUN_DIR/report.html")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_outcomes)
    return p
