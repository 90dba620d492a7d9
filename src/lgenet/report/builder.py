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
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import lgenet.report.html as H
from lgenet import __version__
from lgenet.config import RunConfig
from lgenet.data.manifest import Cohort, load_manifest
from lgenet.errors import ConfigError, LgenetError
from lgenet.evaluation import read_metrics
from lgenet.explain.cam import CAM_METHODS, METHOD_LABELS, check_method
from lgenet.explain.frames import FrameStore
from lgenet.explain.gallery import CATEGORIES, CATEGORY_TITLES, plot_gallery, select_cases
from lgenet.explain.oof import OofCams, oof_cams_multi, write_overlays
from lgenet.explain.sanity import HEART_LABELS, MAX_RHO, SanityResult, cam_sanity_multi, plot_sanity
from lgenet.report.cohort import CohortSummary, plot_cohort, summarise_cohort
from lgenet.report.figure1 import TASK_LABELS, plot_figure1
from lgenet.runs.grid import SEED_FAMILY, RunDir, parse_model_key
from lgenet.utils import atomic_write_text, sha256_file

__all__ = ["write_report", "ReportOptions"]

log = logging.getLogger("lgenet")


@dataclass(frozen=True)
class ReportOptions:
    """What the report explains and how.

    Attributes:
        manifest: the cohort CSV (default: the run's own, from config.yaml).
        cam_method: ``gradcam`` (default), ``gradcam++`` or ``hirescam`` -- gallery and Figure 1.
        cam_layer: module path of the CAM layer (default: the backbone's last block).
        cam_target: ``predicted`` (explain the class called) or ``positive``.
        sanity_methods: methods whose sanity checks are reported side by side.
        n_examples: gallery cases per category (TP, FN, TN, FP).
        heart_labels: mask labels counted as heart in the energy check.
        n_random: patients per task in the model-randomisation check.
        max_rho: the randomisation check passes when the median Spearman rho is below this.
        cams: compute CAMs at all (False: metrics-only report).
        refresh_cams: ignore the CAM cache.
    """

    manifest: str | None = None
    cam_method: str = "gradcam"
    cam_layer: str | None = None
    cam_target: str = "predicted"
    sanity_methods: tuple[str, ...] = CAM_METHODS
    n_examples: int = 3
    heart_labels: tuple[int, ...] = HEART_LABELS
    n_random: int = 16
    max_rho: float = MAX_RHO
    cams: bool = True
    refresh_cams: bool = False


@dataclass
class _TaskCams:
    task: str
    model: str
    cams: OofCams | None = None
    sanity: list[SanityResult] = field(default_factory=list)
    cases: dict = field(default_factory=dict)
    gallery: Path | None = None
    sanity_fig: Path | None = None
    overlays: Path | None = None
    note: str = ""


# ----------------------------------------------------------------------------------- helpers
def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _ci(v, lo, hi, pct: bool = False) -> str:
    v, lo, hi = _f(v), _f(lo), _f(hi)
    if math.isnan(v):
        return "n/a"
    if pct:
        s = f"{100 * v:.0f}%"
        return s if math.isnan(lo) else f"{s} ({100 * lo:.0f}\u2013{100 * hi:.0f})"
    s = f"{v:.2f}"
    return s if math.isnan(lo) else f"{s} ({lo:.2f}\u2013{hi:.2f})"


def _p(v) -> str:
    v = _f(v)
    if math.isnan(v):
        return "\u2014"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _ordinal(v: float) -> str:
    if float(v) != int(v):
        return f"{v:g}th"
    n = int(v)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _is_best(r) -> bool:
    return r.get("best") is True or str(r.get("best")).lower() == "true"


def _task_name(task: str, thr: float) -> str:
    return TASK_LABELS.get(task, task).format(thr=thr)


def _class_names(task: str, thr: float) -> tuple[str, str]:
    return (f"LGE \u2264 {thr:g}%", f"LGE > {thr:g}%") if task == "lge" else ("no event", "event")


def _read_oof(run: Path) -> list[dict]:
    return RunDir(run).read_oof()


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


def _truth(cohort: Cohort, task: str) -> dict[str, str]:
    out = {}
    for r in cohort.records:
        if task == "lge" and r.lge_percent is not None:
            out.setdefault(r.patient_id, f"LGE {r.lge_percent:.1f}%")
        elif task == "event" and r.event is not None:
            out.setdefault(r.patient_id, "event" if r.event else "no event")
    return out


# ----------------------------------------------------------------------------------- CAM work
def _task_cams(
    run: Path,
    task: str,
    model: str,
    cohort: Cohort,
    store: FrameStore,
    cfg: RunConfig,
    opts: ReportOptions,
    figdir: Path,
) -> _TaskCams:
    out = _TaskCams(task=task, model=model)
    primary = check_method(opts.cam_method)
    methods = [primary] + [m for m in (check_method(x) for x in opts.sanity_methods) if m != primary]
    by_method = oof_cams_multi(
        run,
        task,
        model,
        store,
        methods=methods,
        target_layer=opts.cam_layer,
        target=opts.cam_target,
        refresh=opts.refresh_cams,
    )
    out.sanity = cam_sanity_multi(
        run,
        list(by_method.values()),
        store,
        heart_labels=opts.heart_labels,
        n_random=opts.n_random,
        max_rho=opts.max_rho,
        refresh=opts.refresh_cams,
    )
    out.cams = by_method[primary]
    out.overlays = write_overlays(out.cams, store, refresh=opts.refresh_cams)
    thr = cfg.decision_threshold
    out.cases = select_cases(out.cams, threshold=thr, n=opts.n_examples)
    out.gallery = plot_gallery(
        out.cams,
        store,
        out.cases,
        path=figdir / f"cam_gallery_{task}.png",
        task_title=_task_name(task, cfg.lge_threshold),
        truth=_truth(cohort, task),
        class_names=_class_names(task, cfg.lge_threshold),
    )
    out.sanity_fig = plot_sanity(
        out.sanity,
        path=figdir / f"cam_sanity_{task}.png",
        title=f"CAM sanity checks, {_task_name(task, cfg.lge_threshold)} ({model})",
    )
    return out


# ----------------------------------------------------------------------------------- sections
def _cohort_section(cs: CohortSummary | None, note: str, fig: Path | None) -> str:
    if cs is None:
        return H.section("cohort", "Cohort", H.flag("Cohort not shown:", H.esc(note)))
    rows = [(v["name"], v["n"], v["n_pos"], f"{100 * v['prevalence']:.0f}%") for v in cs.tasks.values()]
    body = (
        f"<p>{cs.n_patients} patients ({cs.n_rows} manifest rows = images). {H.esc(cs.lge_text())}."
        + (f" Follow-up: {H.esc(cs.followup_text())}." if cs.followup else "")
        + (f" {cs.n_masks} images have a label mask (used for the CAM heart-energy check)." if cs.n_masks else "")
        + "</p>"
        + H.table(("Task (positive class)", "Patients labelled", "Positive", "Prevalence"), rows, num_cols=(1, 2, 3))
    )
    if fig is not None:
        body += H.img(
            fig,
            "LGE burden distribution",
            caption="LGE burden per patient (% of LV myocardium, the manifest's lge_percent); dashed "
            "line: the threshold of task 'lge'. Right: burden by clinical event.",
        )
    return H.section("cohort", "Cohort", body)


def _protocol_section(cfg: RunConfig, metrics: Sequence[dict], run_json: dict) -> str:
    n_models = len({r["model"] for r in metrics})
    size = (
        f"{cfg.image_size} px"
        if cfg.image_size
        else "the backbone's own input size (224 px ResNet50, 299 px InceptionV3)"
    )
    head = (
        f"Flatten \u2192 Dense {cfg.dense_units} \u2192 ReLU \u2192 Dropout {cfg.dropout:g} \u2192 one logit"
        if cfg.head == "flatten"
        else "global average pooling \u2192 one logit"
    )
    ci = "DeLong" if cfg.ci_method == "delong" else f"stratified bootstrap ({cfg.n_bootstrap} replicates)"
    items = [
        f"<b>Input</b>: one {H.esc(cfg.slice)} short-axis LGE frame per image; intensities clipped to the "
        f"{_ordinal(cfg.intensity_percentiles[0])}\u2013{_ordinal(cfg.intensity_percentiles[1])} percentiles and scaled to [0, 1], "
        f"padded to a square, resized to {H.esc(size)}; gray replicated to 3 channels with the weights' own "
        f"normalisation. Augmentation: {'light (rotation, scale, shift, gamma)' if cfg.augment else 'none (as in the seed)'}.",
        f"<b>Models</b>: {H.esc(', '.join(cfg.archs))} \u00d7 initialisation {H.esc(', '.join(cfg.inits))} "
        f"({n_models} model{'s' if n_models != 1 else ''} per task); head {head}; all layers trainable.",
        f"<b>Training</b>: Adam (learning rate {cfg.lr:g}, weight decay {cfg.weight_decay:g}), binary cross-entropy, "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}; the model of the {H.esc(cfg.selection)} epoch is evaluated, so the "
        "test fold never chooses it. Every fold trains a fresh network.",
        f"<b>Validation</b>: stratified, patient-level {cfg.folds}-fold cross-validation; one fold assignment per task "
        f"shared by every model (paired comparisons); seed {cfg.seed}.",
        f"<b>Evaluation</b>: out-of-fold predictions pooled over the folds; ROC AUC with {cfg.confidence:.0%} CI "
        f"({ci}); sensitivity, specificity, PPV and NPV at p \u2265 {cfg.decision_threshold:g} with Wilson CIs; "
        "Brier score; paired two-sided DeLong test of each model against the task's best.",
    ]
    models_seen = {str(r["model"]) for r in metrics}
    if any(m.startswith("burden:") for m in models_seen):
        items.insert(
            2,
            "<b>Segmentation-based scores</b> (<code>burden:whole/seg</code>, <code>burden:basal/seg</code>): "
            f"the LGE % of the myocardium predicted by the segmentation run "
            f"<code>{H.esc(Path(cfg.segmentation_run).name if cfg.segmentation_run else '?')}</code> for each "
            "patient by the fold model that never saw the patient (whole LV, or the basal slice), used as the "
            f"score with no fitting: p = sigmoid((LGE % \u2212 {cfg.lge_threshold:g}) / {cfg.burden_scale:g}). "
            "They have no CAM: what they look at is the segmentation (its own report shows the masks).",
        )
    if any(m.startswith(("roi:", "stack:")) for m in models_seen):
        items.insert(
            2,
            f"<b>ROI / whole-stack CNNs</b>: {H.esc(cfg.anatomy_arch)} from random initialisation on "
            f"{cfg.anatomy_size} px LV-centred windows at {cfg.anatomy_spacing:g} mm placed by the same-fold "
            f"segmenter (inputs: {H.esc(cfg.anatomy_channels)}), {cfg.anatomy_epochs} epochs"
            + (f", auxiliary segmentation loss weight {cfg.anatomy_aux_weight:g}" if cfg.anatomy_aux_weight else "")
            + "; <code>stack</code> pools every slice by gated attention.",
        )
    caveat = (
        (
            '<p class="note">The best model is the one with the highest cross-validated AUC among '
            f"{n_models} per task; its AUC is therefore slightly optimistic. Name a model chosen in advance "
            "(<code>lgenet predict --model</code>) when that matters.</p>"
        )
        if n_models > 1
        else ""
    )
    cfg_dict = cfg.to_dict()
    cfg_dict["manifest"] = run_json.get("manifest") or (Path(cfg.manifest).name if cfg.manifest else None)
    cfg_dict.pop("out", None)
    resolved = H.details(
        "Resolved configuration (config.yaml; paths reduced to file names)",
        f"<pre>{H.esc(yaml.safe_dump(cfg_dict, sort_keys=False))}</pre>",
    )
    return H.section(
        "protocol", "Protocol", "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>" + caveat + resolved
    )


def _metrics_table(metrics: Sequence[dict], thr: float) -> str:
    rows, classes = [], []
    for r in metrics:
        rows.append(
            (
                H.esc(_task_name(r["task"], thr)),
                H.esc(r["model"]) + (" \u2605" if _is_best(r) else ""),
                _ci(r["auc"], r.get("auc_lower"), r.get("auc_upper")),
                _ci(r.get("sensitivity"), r.get("sensitivity_lower"), r.get("sensitivity_upper"), True),
                _ci(r.get("specificity"), r.get("specificity_lower"), r.get("specificity_upper"), True),
                _ci(r.get("ppv"), r.get("ppv_lower"), r.get("ppv_upper"), True),
                _ci(r.get("npv"), r.get("npv_lower"), r.get("npv_upper"), True),
                f"{_f(r.get('brier')):.3f}",
                _ci(r.get("cal_slope"), r.get("cal_slope_lower"), r.get("cal_slope_upper")),
                _ci(r.get("cal_intercept"), r.get("cal_intercept_lower"), r.get("cal_intercept_upper")),
                "best" if _is_best(r) else _p(r.get("delong_p_vs_best")),
                f"{int(_f(r['n']))} ({int(_f(r['n_pos']))})",
            )
        )
        classes.append("best" if _is_best(r) else "")
    conf = _f(metrics[0].get("confidence")) if metrics else 0.95
    head = (
        "Task",
        "Model",
        f"AUC ({conf:.0%} CI)",
        "Sensitivity",
        "Specificity",
        "PPV",
        "NPV",
        "Brier",
        "Calibration slope",
        "Calibration-in-the-large",
        "DeLong p vs best",
        "n (positive)",
    )
    notes = [f"{H.esc(r['model'])} ({H.esc(r['task'])}): {H.esc(r['note'])}" for r in metrics if r.get("note")]
    return (
        H.table(head, rows, num_cols=range(2, 12), row_classes=classes, raw=True)
        + '<p class="note">\u2605 highest out-of-fold AUC within the task. Threshold metrics at p \u2265 '
        f"{_f(metrics[0].get('threshold')):g} with Wilson {conf:.0%} CIs. Brier: mean squared error of the "
        "probability (lower is better; 0.25 = always predicting 0.5). Calibration slope (ideal 1) and "
        "calibration-in-the-large (ideal 0) by logistic recalibration of the out-of-fold log-odds, bootstrap CIs.</p>"
        + ('<p class="note">Notes: ' + "; ".join(notes) + "</p>" if notes else "")
    )


def _results_section(run: Path, metrics: Sequence[dict], oof: list[dict], cfg: RunConfig, figdir: Path) -> str:
    from lgenet.evaluation import plot_auc_bars, plot_calibration, plot_confusion, plot_roc
    from lgenet.evaluation.metrics import auc_ci, calibration

    thr = cfg.lge_threshold
    tasks = list(dict.fromkeys(r["task"] for r in metrics))
    body = [_metrics_table(metrics, thr)]
    for task in tasks:
        name = _task_name(task, thr)
        rows = [r for r in metrics if r["task"] == task]
        best = next(r for r in rows if _is_best(r))
        roc = run / f"roc_{task}.png"
        if not roc.is_file():
            curves = []
            for r in rows:
                sel = [o for o in oof if o["task"] == task and o["model"] == r["model"]]
                y = np.array([int(o["y_true"]) for o in sel])
                p = np.array([float(o["prob"]) for o in sel])
                curves.append((r["model"], y, p, auc_ci(y, p, method=cfg.ci_method, confidence=cfg.confidence)))
            plot_roc(curves, title=f"ROC, {name} (out-of-fold, {cfg.folds}-fold CV)", path=figdir / f"roc_{task}.png")
            roc = figdir / f"roc_{task}.png"
        bars = run / f"auc_{task}.png"
        if not bars.is_file():
            bars = plot_auc_bars(rows, task=task, path=figdir / f"auc_{task}.png", task_title=name)
        sel = [o for o in oof if o["task"] == task and o["model"] == best["model"]]
        y = np.array([int(o["y_true"]) for o in sel])
        p = np.array([float(o["prob"]) for o in sel])
        cal = plot_calibration(
            y, p, label=best["model"], path=figdir / f"calibration_{task}.png", n_bins=min(5, max(2, int(y.sum())))
        )
        brier = calibration(y, p, n_bins=min(5, max(2, int(y.sum()))))["brier"]
        conf = plot_confusion(best, path=figdir / f"confusion_{task}.png")
        body.append(
            f"<h3>{H.esc(name)}</h3>"
            f"<p>Best model <b>{H.esc(best['model'])}</b>: AUC {_ci(best['auc'], best.get('auc_lower'), best.get('auc_upper'))}, "
            f"Brier score {brier:.3f} (prevalence {100 * _f(best.get('prevalence')):.0f}%: a model always predicting "
            f"the prevalence scores {_f(best.get('prevalence')) * (1 - _f(best.get('prevalence'))):.3f}).</p>"
            '<div class="grid2">'
            + H.img(roc, f"ROC curves {task}", caption="Out-of-fold ROC curves of every model, AUC with CI.")
            + H.img(bars, f"AUC bars {task}", caption="AUC by architecture and initialisation (error bars: CI).")
            + H.img(
                cal,
                f"calibration {task}",
                caption=f"Calibration of the best model ({H.esc(best['model'])}): "
                "observed fraction positive per bin of predicted probability.",
            )
            + H.img(
                conf,
                f"confusion {task}",
                caption=f"Confusion matrix of the best model at p \u2265 {_f(best.get('threshold')):g}.",
            )
            + "</div>"
        )
    return H.section("results", "Results", "".join(body))


def _sanity_table(results: Sequence[SanityResult], primary: str) -> str:
    rows = []
    for r in results:
        verdict = {True: "passes", False: "FAILS", None: "not assessable"}[r.passed]
        rows.append(
            (
                H.esc(r.label) + (" (gallery)" if r.method == primary else ""),
                f"{100 * np.median(r.energy_share):.0f}% vs {100 * np.median(r.area_share):.0f}%"
                if r.energy_share
                else "no masks",
                f"{r.median_enrichment:.2f} (n={len(r.energy_share)})" if r.energy_share else "\u2014",
                f"{r.median_rho:.2f} (n={len(r.rho)})" if r.rho else "\u2014",
                f'<b style="color:{"#b00020" if r.passed is False else "#1e7a34"}">{verdict}</b>',
            )
        )
    return H.table(
        (
            "Method",
            "Median CAM energy on heart vs heart area",
            "Median enrichment (>1 passes)",
            f"Median Spearman \u03c1 trained vs random (<{results[0].max_rho:g} passes)" if results else "\u03c1",
            "Verdict",
        ),
        rows,
        num_cols=(1, 2, 3),
        raw=True,
    )


def _cam_section(tcs: Sequence[_TaskCams], note: str, opts: ReportOptions, cfg: RunConfig) -> str:
    if not opts.cams:
        return H.section("cams", "Where the model looked (CAMs)", '<p class="note">CAMs were not requested.</p>')
    if note:
        return H.section("cams", "Where the model looked (CAMs)", H.flag("CAMs not shown:", H.esc(note)))
    method = METHOD_LABELS[check_method(opts.cam_method)]
    intro = (
        f"<p>{method} maps (pytorch-grad-cam) of each task's best model at its last convolutional block. "
        "Every patient's map comes from the <b>fold model that never saw that patient</b> (its out-of-fold "
        "model, the one behind its out-of-fold prediction). "
        + (
            "Each map explains the class the model predicted (for true and false negatives: what pushed the "
            "model towards the negative class). "
            if opts.cam_target == "predicted"
            else "Each map explains the positive class. "
        )
        + "Maps are scaled to their own maximum: colour shows where, not how strongly, relative to other "
        "patients. The gallery shows the most confident cases of each kind by out-of-fold probability.</p>"
    )
    body = [intro]
    for t in tcs:
        name = _task_name(t.task, cfg.lge_threshold)
        body.append(f"<h3>{H.esc(name)} \u2014 {H.esc(t.model)}</h3>")
        if t.note:
            body.append(H.flag("CAMs not available:", H.esc(t.note)))
            continue
        counts = ", ".join(
            f"{CATEGORY_TITLES[c].lower()} {len(select_cases(t.cams, threshold=cfg.decision_threshold, n=10**6)[c])}"
            for c in CATEGORIES
        )
        gh, gw = t.cams.grid
        size = t.cams.maps_u8.shape[-1]
        body.append(
            H.img(
                t.gallery,
                f"CAM gallery {t.task}",
                caption=f"Frame (left) and overlay (right) per case; p = out-of-fold probability. "
                f"Patients per category: {H.esc(counts)}. Layer {H.esc(t.cams.layer)}: a "
                f"{gh}\u00d7{gw} feature map at {size} px input, the maps' true resolution "
                "(upsampled for display).",
            )
        )
        if gh * gw <= 1:
            body.append(
                H.flag(
                    "No spatial information:",
                    f"the CAM layer's output is {gh}\u00d7{gw} at {size} px input, so every map is constant "
                    "(shown empty). Train at a larger --image-size, or choose an earlier layer with "
                    "<code>lgenet report RUN --cam-layer NAME</code>.",
                )
            )
        failing = [r for r in t.sanity if r.passed is False]
        for r in failing:
            body.append(
                H.flag(
                    f"{r.label} fails its sanity checks for this task:",
                    H.esc("; ".join(r.reasons())) + ". Read its maps with caution.",
                )
            )
        if t.sanity and not failing and all(r.passed for r in t.sanity):
            body.append('<div class="ok">All CAM methods pass both sanity checks for this task.</div>')
        body.append(_sanity_table(t.sanity, t.cams.method))
        body.append(
            H.img(
                t.sanity_fig,
                f"CAM sanity {t.task}",
                caption="Left: share of each map's energy on the heart (mask labels "
                f"{', '.join(map(str, opts.heart_labels))}) against the share of the frame the heart "
                "covers; points above the dashed line favour the heart. Right: rank correlation "
                "between the maps of the trained fold model and of the same network with random "
                "weights (model-randomisation test); a faithful method gives low values.",
            )
        )
        body.append(
            f'<p class="note">Overlays of every patient (PNG, original frame resolution and orientation, '
            f"named by study-local patient id): <code>{H.esc(t.overlays.relative_to(t.cams.path.parents[3]))}</code></p>"
        )
    return H.section("cams", "Where the model looked (CAMs)", "".join(body))


def _segmentation_section(cfg: RunConfig) -> str:
    """The segmentation run behind the anatomy-aware families (its own out-of-fold figures), if any."""
    if not cfg.segmentation_run or not Path(cfg.segmentation_run).is_dir():
        return ""
    from lgenet.report.segmentation import plot_seg_gallery, seg_section

    run = Path(cfg.segmentation_run)
    if (run / "seg_config.yaml").is_file() and not (run / "figures" / "seg_gallery.png").is_file():
        try:
            plot_seg_gallery(run)
        except Exception as exc:  # noqa: BLE001 - the section is shown without its gallery
            log.warning("segmentation gallery not drawn: %s", exc)
    return (
        seg_section(run, title="Segmentation (anatomy-aware families)") if (run / "seg_config.yaml").is_file() else ""
    )


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


def _outcomes_section(run: Path) -> str:
    from lgenet.report.outcomes import outcomes_section

    return outcomes_section(run / "outcomes")


def _env_section(run_json: dict, manifest_name: str, opts: ReportOptions) -> str:
    env = run_json.get("environment", {})
    dash = "\u2014"
    pairs = [
        ("Manifest", manifest_name or dash),
        ("Manifest SHA-256", run_json.get("manifest_sha256", dash)),
        ("Run finished", run_json.get("finished", dash)),
        ("Run time", f"{run_json.get('seconds', dash)} s"),
        ("Fits run / resumed", f"{run_json.get('fits_run', dash)} / {run_json.get('fits_skipped', dash)}"),
    ]
    pairs += [(k.replace("_", " "), v) for k, v in env.items()]
    pairs += [
        ("Report by lgenet", __version__),
        ("Report written", time.strftime("%Y-%m-%d %H:%M %z")),
        ("CAM method / target", f"{METHOD_LABELS[check_method(opts.cam_method)]} / {opts.cam_target}"),
    ]
    return H.section(
        "environment",
        "Environment and provenance",
        H.kv_table(pairs) + '<p class="note">The report is regenerated from the run directory with '
        "<code>lgenet report RUN_DIR</code>; it never retrains, and CAMs are cached in "
        "<code>cams/</code>.</p>",
    )


def _key_findings(metrics: Sequence[dict], thr: float) -> str:
    items = []
    for r in metrics:
        if _is_best(r):
            items.append(
                f"<li><b>{H.esc(_task_name(r['task'], thr))}</b>: best model {H.esc(r['model'])}, AUC "
                f"{_ci(r['auc'], r.get('auc_lower'), r.get('auc_upper'))}; sensitivity {_ci(r.get('sensitivity'), None, None, True)}, "
                f"specificity {_ci(r.get('specificity'), None, None, True)}, PPV {_ci(r.get('ppv'), None, None, True)}, "
                f"NPV {_ci(r.get('npv'), None, None, True)} at p \u2265 0.5"
                + (
                    f"; at the training-fold prevalence threshold: sensitivity "
                    f"{_ci(r.get('op_sensitivity'), r.get('op_sensitivity_lower'), r.get('op_sensitivity_upper'), True)}, "
                    f"specificity {_ci(r.get('op_specificity'), r.get('op_specificity_lower'), r.get('op_specificity_upper'), True)}, "
                    f"PPV {_ci(r.get('op_ppv'), None, None, True)}, NPV {_ci(r.get('op_npv'), None, None, True)}"
                    if _f(r.get("op_sensitivity")) == _f(r.get("op_sensitivity"))
                    else ""
                )
                + f"; n={int(_f(r['n']))} ({int(_f(r['n_pos']))} positive).</li>"
            )
    return f'<div class="keybox"><b>Key results (out-of-fold)</b><ul>{"".join(items)}</ul></div>'


# ----------------------------------------------------------------------------------- entry point
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
    check_method(opts.cam_method)
    if opts.n_examples < 1:
        raise ConfigError(f"n_examples must be >= 1, got {opts.n_examples}")
    rd = RunDir(run_dir)
    run = rd.path
    cfg = rd.load_config()
    if not (run / "metrics.json").is_file() or not (run / "oof_predictions.csv").is_file():
        raise ConfigError(
            f"{run} has no metrics.json / oof_predictions.csv: the run has not finished; "
            "rerun `lgenet run` with the same settings to complete it"
        )
    t0 = time.time()
    metrics = read_metrics(run / "metrics.json")
    oof = _read_oof(run)
    run_json = rd.run_json()
    run_json.setdefault("manifest_sha256", rd.manifest_sha256())
    figdir = run / "figures"
    figdir.mkdir(exist_ok=True)
    thr = cfg.lge_threshold
    tasks = list(dict.fromkeys(r["task"] for r in metrics))

    cohort, cohort_note = _load_cohort(run, cfg, run_json, opts.manifest)
    cs = summarise_cohort(cohort) if cohort is not None else None
    cohort_fig = plot_cohort(cs, path=figdir / "cohort_lge.png") if cs is not None else None

    tcs: list[_TaskCams] = []
    cam_note = "" if cohort is not None else cohort_note
    store = FrameStore(cohort, cfg) if cohort is not None else None
    if opts.cams and cohort is not None:
        for task in tasks:
            if not any(parse_model_key(r["model"]).family == SEED_FAMILY for r in metrics if r["task"] == task):
                tcs.append(
                    _TaskCams(
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
                tcs.append(_task_cams(run, task, model, cohort, store, cfg, opts, figdir))
            except ConfigError:
                raise  # a wrong option (e.g. --cam-layer): the user fixes it, no half report
            except LgenetError as exc:
                log.error("CAMs for task %s (%s) could not be computed: %s", task, model, exc)
                tcs.append(_TaskCams(task=task, model=model, note=str(exc)))

    fig_task = next(
        (t for t in tcs if t.cams is not None and t.task == "lge"), next((t for t in tcs if t.cams is not None), None)
    )
    plot_figure1(
        metrics=metrics,
        cfg=cfg,
        paths=[run / "figure1.png", run / "figure1.pdf"],
        cam_task=fig_task.task if fig_task else None,
        cams=fig_task.cams if fig_task else None,
        store=store,
        cases=fig_task.cases if fig_task else None,
        truth=_truth(cohort, fig_task.task) if fig_task and cohort is not None else None,
        cam_note=cam_note or ("CAMs not requested" if not opts.cams else "CAMs not available"),
    )

    flags = [f"{r.label} ({t.task}, {t.model})" for t in tcs for r in t.sanity if r.passed is False]
    banner = (
        H.flag("CAM sanity:", "failing method(s): " + H.esc(", ".join(flags)) + " \u2014 see the CAM section.")
        if flags
        else ""
    )
    sections = [
        _key_findings(metrics, thr) + banner,
        _cohort_section(cs, cohort_note, cohort_fig),
        _protocol_section(cfg, metrics, run_json),
        _results_section(run, metrics, oof, cfg, figdir),
        _cam_section(tcs, cam_note, opts, cfg),
        _segmentation_section(cfg),
        _outcomes_section(run),
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
        _env_section(run_json, run_json.get("manifest") or "", opts),
    ]
    nav = [("cohort", "Cohort"), ("protocol", "Protocol"), ("results", "Results"), ("cams", "CAMs")]
    nav += [("segmentation", "Segmentation")] if sections[5] else []
    nav += [("outcomes", "Outcomes")] if sections[6] else []
    nav += [("figure1", "Figure 1"), ("environment", "Environment")]
    n_pat = cs.n_patients if cs else len({o["patient_id"] for o in oof})
    subtitle = [
        H.esc(
            f"{n_pat} patients \u00b7 tasks: {', '.join(_task_name(t, thr) for t in tasks)} \u00b7 "
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
