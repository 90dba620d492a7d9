"""The report's CAM work and its section: each task's out-of-fold CAMs, sanity checks, gallery, overlays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import lgenet.report.html as H
from lgenet.config import RunConfig
from lgenet.data.manifest import Cohort
from lgenet.explain.cam import CAM_METHODS, DEFAULT_METHOD, METHOD_LABELS, check_method
from lgenet.explain.frames import FrameStore
from lgenet.explain.gallery import CATEGORIES, CATEGORY_TITLES, plot_gallery, select_cases
from lgenet.explain.oof import oof_cams_multi
from lgenet.explain.oof_store import OofCams, write_overlays
from lgenet.explain.sanity import SanityResult, cam_sanity_multi, plot_sanity
from lgenet.report.options import ReportOptions
from lgenet.report.text import class_names, task_name

__all__ = ["TaskCams", "task_cams", "truth_labels", "cam_section"]


@dataclass
class TaskCams:
    task: str
    model: str
    cams: OofCams | None = None
    sanity: list[SanityResult] = field(default_factory=list)
    cases: dict = field(default_factory=dict)
    gallery: Path | None = None
    sanity_fig: Path | None = None
    #: why the gallery shows another method than the default (``cam_method='auto'``)
    choice: str = ""
    overlays: Path | None = None
    note: str = ""


def truth_labels(cohort: Cohort, task: str) -> dict[str, str]:
    out = {}
    for r in cohort.records:
        if task == "lge" and r.lge_percent is not None:
            out.setdefault(r.patient_id, f"LGE {r.lge_percent:.1f}%")
        elif task == "event" and r.event is not None:
            out.setdefault(r.patient_id, "event" if r.event else "no event")
    return out


# ----------------------------------------------------------------------------------- CAM work
def choose_method(requested: str, sanity: Sequence[SanityResult]) -> tuple[str, str]:
    """The method a task's gallery and Figure 1 show, and why when it is not the default: ``requested``, or for
    ``auto`` the first method (in :data:`~lgenet.explain.cam.CAM_METHODS` order) whose sanity checks pass for
    the task, else the default (whose failure the section flags)."""
    if requested != "auto":
        return requested, ""
    passing = [m for m in CAM_METHODS if any(r.method == m and r.passed for r in sanity)]
    if not passing or passing[0] == DEFAULT_METHOD:
        return DEFAULT_METHOD, ""
    return passing[0], (
        f"{METHOD_LABELS[DEFAULT_METHOD]} fails its sanity checks for this task; the gallery and Figure 1 show "
        f"{METHOD_LABELS[passing[0]]}, the first method that passes both"
    )


def task_cams(
    run: Path,
    task: str,
    model: str,
    cohort: Cohort,
    store: FrameStore,
    cfg: RunConfig,
    opts: ReportOptions,
    figdir: Path,
) -> TaskCams:
    out = TaskCams(task=task, model=model)
    requested = check_method(opts.cam_method, auto=True)
    primary = DEFAULT_METHOD if requested == "auto" else requested
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
    primary, out.choice = choose_method(requested, out.sanity)
    out.cams = by_method[primary]
    out.overlays = write_overlays(out.cams, store, refresh=opts.refresh_cams)
    thr = cfg.decision_threshold
    out.cases = select_cases(out.cams, threshold=thr, n=opts.n_examples)
    out.gallery = plot_gallery(
        out.cams,
        store,
        out.cases,
        path=figdir / f"cam_gallery_{task}.png",
        task_title=task_name(task, cfg.lge_threshold),
        truth=truth_labels(cohort, task),
        class_names=class_names(task, cfg.lge_threshold),
    )
    out.sanity_fig = plot_sanity(
        out.sanity,
        path=figdir / f"cam_sanity_{task}.png",
        title=f"CAM sanity checks, {task_name(task, cfg.lge_threshold)} ({model})",
    )
    return out


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


def cam_section(tcs: Sequence[TaskCams], note: str, opts: ReportOptions, cfg: RunConfig) -> str:
    if not opts.cams:
        return H.section("cams", "Where the model looked (CAMs)", '<p class="note">CAMs were not requested.</p>')
    if note:
        return H.section("cams", "Where the model looked (CAMs)", H.flag("CAMs not shown:", H.esc(note)))
    shown = sorted({t.cams.method for t in tcs if t.cams is not None}) or [DEFAULT_METHOD]
    method = " / ".join(METHOD_LABELS[m] for m in shown)
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
        name = task_name(t.task, cfg.lge_threshold)
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
        if t.choice:
            body.append(f'<div class="ok">{H.esc(t.choice)}.</div>')
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
