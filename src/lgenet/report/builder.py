"""``write_report(run_dir)``: the study report of a finished run, without retraining anything.

Inputs are the run directory's own files (``config.yaml``, ``run.json``, ``metrics.json``,
``oof_predictions.csv``, ``folds_<task>.csv``, the best models' fold ``model.pt``) and the
manifest's images for the CAMs. Outputs, all written atomically into the run directory::

    report.html                  one self-contained page (images embedded; opens offline)
    figure1.png, figure1.pdf     the seed's Figure 1 layout
    figures/*.png                every figure of the report as its own file
    cams/<task>/<arch>__<init>/  CAM cache, sanity results, overlays (see lgenet.explain.oof)

Privacy: the report shows study-local patient ids only. It never prints image paths, file names
of the cohort, or any DICOM header field (the readers do not return them in the first place); the
manifest appears by file name and SHA-256, and figures carry no metadata.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lgenet.report.html as H
from lgenet import __version__
from lgenet.config import RunConfig
from lgenet.conventions.names import check_unique_names
from lgenet.data.manifest import Cohort, load_manifest
from lgenet.errors import ConfigError, DataError, LgenetError
from lgenet.evaluation import read_metrics
from lgenet.explain.cam import check_method
from lgenet.explain.frames import FrameStore
from lgenet.report.cams import TaskCams, cam_section, task_cams, truth_labels
from lgenet.report.cohort import plot_cohort, summarise_cohort
from lgenet.report.figure1 import CamPanels, plot_figure1
from lgenet.report.options import ReportOptions
from lgenet.report.results import key_findings, results_section
from lgenet.report.sections import (
    cohort_section,
    env_section,
    outcomes_section,
    protocol_section,
    segmentation_section,
)
from lgenet.report.text import task_name
from lgenet.runs.grid import SEED_FAMILY, RunDir, parse_model_key
from lgenet.utils import atomic_write_text, sha256_file

__all__ = ["write_report", "ReportOptions"]

log = logging.getLogger("lgenet")


def _load_cohort(run: Path, cfg: RunConfig, run_json: dict, manifest: str | None) -> tuple[Cohort | None, str]:
    """The run's cohort, or None and why (missing manifest, or a manifest that changed)."""
    path = Path(manifest or cfg.manifest or "")
    if manifest and not path.is_file():
        raise ConfigError(f"--manifest {path} does not exist; give the cohort CSV the run was trained on")
    if not manifest and cfg.manifest and not path.is_absolute() and not path.is_file():
        path = run / cfg.manifest  # a relative manifest path may have been relative to another folder
    if not path.is_file():
        return None, (
            "the run's manifest was not found (pass `lgenet report RUN --manifest cohort.csv`); "
            "the cohort section and CAMs are left out"
        )
    want = run_json.get("manifest_sha256")
    if want and sha256_file(path) != want:
        return None, (
            "the manifest differs from the one the run used (SHA-256 mismatch); the cohort section and "
            "CAMs are left out rather than computed on other images"
        )
    return load_manifest(path, tasks=None, lge_threshold=cfg.lge_threshold), ""


def _is_synthetic(cfg: RunConfig, manifest: str | None) -> bool:
    """True when the manifest sits in a cohort written by ``lgenet synth`` (its cohort_summary.json)."""
    import json

    m = manifest or cfg.manifest
    if not m:
        return False
    f = Path(m).parent / "cohort_summary.json"
    try:
        return json.loads(f.read_text()).get("generator", "").startswith("lgenet.data.synth")
    except (OSError, ValueError, AttributeError):
        return False


def _check_run_files(rd: RunDir, metrics: list[dict], oof: list[dict]) -> None:
    """The run's files the report reads, checked before any figure is rewritten (since 0.2.0): every row of
    oof_predictions.csv complete, every model of metrics.json with all its out-of-fold rows, and
    outcomes/outcomes.json (when there is one) readable."""
    import json
    import math

    redo = "rerun `lgenet run` with the run's settings and the same --out to rewrite it"
    for i, r in enumerate(oof):
        try:
            ok = None not in r and None not in r.values() and math.isfinite(float(r["y_true"]))
            float(r["prob"])
        except (TypeError, ValueError, KeyError):
            ok = False
        if not ok:
            raise DataError(f"{rd.oof_path} is damaged (row {i + 2} is incomplete: the file was cut short?); {redo}")
    count: dict[tuple[str, str], int] = {}
    for r in oof:
        count[(r["task"], r["model"])] = count.get((r["task"], r["model"]), 0) + 1
    for m in metrics:
        try:
            n = int(m.get("n"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        have = count.get((m["task"], m["model"]), 0)
        if have < n:
            raise DataError(
                f"{rd.oof_path} is incomplete: model {m['model']} of task {m['task']} has {have} out-of-fold "
                f"prediction(s), {rd.metrics_json_path.name} counts {n} (the file was cut short?); {redo}"
            )
    f = rd.path / "outcomes" / "outcomes.json"
    if f.is_file():
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise DataError(
                f"{f} is unreadable (not complete JSON: the file was cut short?); rerun `lgenet outcomes "
                f"{rd.path}` to rewrite it (or delete {f.parent} to leave the outcomes out of the report)"
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict):
            raise DataError(
                f"{f} is not an lgenet outcomes record (no 'tasks'); rerun `lgenet outcomes {rd.path}` to rewrite it"
            )


# ----------------------------------------------------------------------------------- entry point
def _clean_report_temps(run: Path, figdir: Path) -> None:
    """Remove the temp files (``.<name>.<random>.tmp<suffix>``) that a killed report left in the run folder, its
    figures and CAM overlays; the run has finished (its metrics are written), so no writer is alive there."""
    found = [p for p in run.glob(".*.tmp*") if p.is_file()]
    for d in (figdir, run / "cams"):
        if d.is_dir():
            found += [p for p in d.rglob(".*.tmp*") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    if found:
        log.info("removed %d temporary file(s) left by an interrupted report", len(found))


def write_report(run_dir: str | Path, options: ReportOptions | None = None, **overrides: Any) -> Path:
    """Write ``report.html``, ``figure1.png`` and ``figure1.pdf`` into a finished run directory.

    Args:
        run_dir: the ``--out`` of ``lgenet run``.
        options: a :class:`ReportOptions`; keyword overrides (e.g. ``cam_method="hirescam"``) apply on top.

    Returns:
        The path of ``report.html``.

    Raises:
        ConfigError: not a finished run directory.
    """
    import dataclasses

    opts = dataclasses.replace(options or ReportOptions(), **overrides)
    check_method(opts.cam_method, auto=True)
    if opts.n_examples < 1:
        raise ConfigError(f"n_examples must be >= 1, got {opts.n_examples}")
    rd = RunDir(run_dir)
    run = rd.path
    cfg = rd.load_config()
    if not rd.metrics_json_path.is_file() or not rd.oof_path.is_file():
        raise ConfigError(
            f"{run} has no metrics.json / oof_predictions.csv: the run has not finished; "
            "rerun `lgenet run` with the same settings to complete it"
        )
    t0 = time.time()
    metrics = read_metrics(rd.metrics_json_path)
    oof = rd.read_oof()
    run_json = rd.run_json()
    run_json.setdefault("manifest_sha256", rd.manifest_sha256())
    _check_run_files(rd, metrics, oof)
    figdir = run / "figures"
    figdir.mkdir(exist_ok=True)
    _clean_report_temps(run, figdir)
    thr = cfg.lge_threshold
    tasks = list(dict.fromkeys(r["task"] for r in metrics))

    cohort, cohort_note = _load_cohort(run, cfg, run_json, opts.manifest)
    if cohort is not None:  # the CAM overlays are named by patient ID: one file each
        check_unique_names(cohort.patient_ids, f"manifest {cohort.path}")
    cs = summarise_cohort(cohort) if cohort is not None else None
    cohort_fig = plot_cohort(cs, path=figdir / "cohort_lge.png") if cs is not None else None

    tcs: list[TaskCams] = []
    cam_note = "" if cohort is not None else cohort_note
    store = FrameStore(cohort, cfg) if cohort is not None else None
    if opts.cams and cohort is not None:
        for task in tasks:
            if not any(parse_model_key(r["model"]).family == SEED_FAMILY for r in metrics if r["task"] == task):
                tcs.append(
                    TaskCams(
                        task=task,
                        model="no classifier",
                        note=(
                            "this run trained no seed-protocol classifier for this task; Grad-CAM explains classifier "
                            "fold models only (roi, stack and burden models rest on the segmentation: see its "
                            "seg_report.html for the masks)."
                        ),
                    )
                )
                continue
            model = rd.choose_model(task)
            try:
                tcs.append(task_cams(run, task, model, cohort, store, cfg, opts, figdir))
            except ConfigError:
                raise  # a wrong option (e.g. --cam-layer): the user fixes it, no half report
            except LgenetError as exc:
                log.error("CAMs for task %s (%s) could not be computed: %s", task, model, exc)
                tcs.append(TaskCams(task=task, model=model, note=str(exc)))

    fig_task = next(
        (t for t in tcs if t.cams is not None and t.task == "lge"), next((t for t in tcs if t.cams is not None), None)
    )
    plot_figure1(
        metrics=metrics,
        cfg=cfg,
        paths=[run / "figure1.png", run / "figure1.pdf"],
        panels=CamPanels(
            task=fig_task.task,
            cams=fig_task.cams,
            cases=fig_task.cases,
            store=store,
            truth=truth_labels(cohort, fig_task.task) if cohort is not None else None,
        )
        if fig_task
        else None,
        cam_note=cam_note or ("CAMs not requested" if not opts.cams else "CAMs not available"),
    )

    flags = [f"{r.label} ({t.task}, {t.model})" for t in tcs for r in t.sanity if r.passed is False]
    banner = (
        H.flag("CAM sanity:", "failing method(s): " + H.esc(", ".join(flags)) + " \u2014 see the CAM section.")
        if flags
        else ""
    )
    sections = [
        key_findings(metrics, thr) + banner,
        cohort_section(cs, cohort_note, cohort_fig),
        protocol_section(cfg, metrics, run_json),
        results_section(run, metrics, oof, cfg, figdir),
        cam_section(tcs, cam_note, opts, cfg),
        segmentation_section(cfg),
        outcomes_section(run),
        H.section(
            "figure1",
            "Figure 1",
            H.img(
                run / "figure1.png",
                "Figure 1",
                caption="A\u2013B best pipeline per task; C\u2013D AUC by architecture (and pretraining when "
                "several initialisations ran); E\u2013L "
                "frames and out-of-fold CAMs of a true positive, false negative, true negative and false "
                "positive. Also saved as figure1.png and figure1.pdf in the run directory.",
            ),
        ),
        env_section(run_json, run_json.get("manifest") or "", opts),
    ]
    nav = [("cohort", "Cohort"), ("protocol", "Protocol"), ("results", "Results"), ("cams", "CAMs")]
    nav += [("segmentation", "Segmentation")] if sections[5] else []
    nav += [("outcomes", "Outcomes")] if sections[6] else []
    nav += [("figure1", "Figure 1"), ("environment", "Environment")]
    n_pat = cs.n_patients if cs else len({o["patient_id"] for o in oof})
    subtitle = [
        H.esc(
            f"{n_pat} patients \u00b7 tasks: {', '.join(task_name(t, thr) for t in tasks)} \u00b7 "
            f"{len({r['model'] for r in metrics})} model(s) per task \u00b7 {cfg.folds}-fold cross-validation"
        ),
        H.esc(f"Run finished {run_json.get('finished', '?')} \u00b7 lgenet {__version__}"),
    ]
    synthetic = _is_synthetic(cfg, opts.manifest)
    if synthetic:
        subtitle.insert(
            0,
            "<strong>Synthetic demonstration cohort</strong> (lgenet synth: phantom images, "
            "simulated labels and follow-up) \u2014 not patient data",
        )
    subtitle.append(
        H.esc(
            "For research use only; not a medical device and not for clinical decisions. "
            "Event label: the manifest's 'event' column"
            + (" (simulated from a known hazard)" if synthetic else " (its definition is the study's)")
            + f"; LGE label: lge_percent > {thr:g}%."
        )
    )
    page = H.page("LGE cardiac MRI deep-learning study report", subtitle, nav, "".join(sections))
    path = atomic_write_text(run / "report.html", page)
    log.info("report written in %.1f s: %s", time.time() - t0, path)
    return path
