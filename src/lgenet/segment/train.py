"""``lgenet segment train``: validation, the fold jobs, and the out-of-fold summary."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lgenet import __version__
from lgenet.config import SegConfig
from lgenet.conventions.names import check_unique_names
from lgenet.data.inputs import image_sha256
from lgenet.errors import ConfigError, DataError, LgenetError
from lgenet.runs.grid import ensure_writable_dir
from lgenet.runs.paths import refuse_overwrite
from lgenet.runs.seg import SegRunDir
from lgenet.runs.tables import number, read_rows, write_rows
from lgenet.segment.cases import _stack_features, _stack_hash, cases_of, read_case
from lgenet.segment.fold import SEG_METRIC_FIELDS, SegFoldJob
from lgenet.segment.quality import QUALITY_FILE
from lgenet.utils import atomic_write_text, sha256_file

__all__ = [
    "SegRunResult",
    "auto_loader_workers",
    "train_segmentation",
    "segmentation_folds",
    "summarise_segmentation",
    "format_seg_summary",
]

log = logging.getLogger("lgenet")


@dataclass
class SegRunResult:
    out_dir: Path
    summary: dict = field(default_factory=dict)
    table: str = ""
    fits_run: int = 0
    fits_skipped: int = 0
    figures: list[Path] = field(default_factory=list)


def _prepare(cfg: SegConfig, progress: bool):
    """Validate everything (manifest, stacks, masks, labels, folds) before anything is written."""
    from tqdm.auto import tqdm

    from lgenet.data.manifest import load_manifest
    from lgenet.data.shift import cohort_profile
    from lgenet.data.splits import assign_folds
    from lgenet.evaluation.segmentation import class_measures

    if cfg.manifest is None:
        raise ConfigError("lgenet segment train: give --manifest cohort.csv (rows with image and mask)")
    ensure_writable_dir(cfg.out)
    cfg.spec()  # geometry checks
    cohort = load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold)
    cases = cases_of(cohort, need_masks=True)
    # the run's masks never overwrite the expert ones, nor its files the manifest; one mask file per patient
    refuse_overwrite(cfg.out, [cfg.manifest, *(c.image for c in cases), *(c.mask for c in cases)], "--out")
    check_unique_names([c.patient_id for c in cases], f"manifest {cfg.manifest}")
    stacks, problems, hashes, feats = {}, [], {}, []
    for c in tqdm(cases, desc="reading stacks", unit="patient", disable=not progress, leave=False):
        try:
            st = read_case(c, cfg)
        except LgenetError as exc:
            problems.append(str(exc))
            continue
        if not (st.classes >= 2).any():
            problems.append(
                f"row {c.row} (patient {c.patient_id}): the mask has no myocardium (labels "
                f"{cfg.labels.get('myo')}); check --labels"
            )
        for note in st.notes:
            log.warning("row %d (patient %s, %s): %s", c.row, c.patient_id, c.image, note)
        stacks[c.patient_id] = st
        hashes[c.patient_id] = _stack_hash(st)
        feats.append(_stack_features(st))
    if problems:
        raise DataError(
            f"{len(problems)} stack(s) of {cfg.manifest} cannot be used:\n"
            + "\n".join(f"  - {p}" for p in problems[:30])
        )
    seen: dict[str, str] = {}
    for pid, h in hashes.items():
        if h in seen:
            raise DataError(
                f"patients {seen[h]} and {pid} have identical image stacks and masks; every patient needs their own"
            )
        seen[h] = pid
    labels_manifest = cohort.labels(cfg.stratify)
    source = f"manifest {'lge_percent' if cfg.stratify == 'lge' else 'event'}"
    if len(labels_manifest) == len(cases):
        labels = labels_manifest
    elif cfg.stratify == "event":
        missing = sorted({c.patient_id for c in cases} - set(labels_manifest))
        raise DataError(
            f"--stratify event needs an 'event' label for every patient; {len(missing)} have none "
            f"(e.g. {', '.join(missing[:5])})"
        )
    else:
        labels = {p: int(class_measures(st.classes)["lge_percent"] > cfg.lge_threshold) for p, st in stacks.items()}
        source = "expert masks (no lge_percent in the manifest)"
    pids = sorted(labels)
    if min(sum(labels.values()), len(pids) - sum(labels.values())) >= cfg.folds:
        folds = assign_folds(
            pids, [labels[p] for p in pids], n_splits=cfg.folds, random_state=cfg.seed, task=cfg.stratify
        )
    else:  # a cohort without both classes: unstratified (still patient-level)
        from sklearn.model_selection import KFold

        if len(pids) < cfg.folds:
            raise DataError(f"{len(pids)} patients are fewer than folds={cfg.folds}; lower --folds or add patients")
        folds = {}
        for k, (_, test) in enumerate(KFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(pids)):
            for i in test:
                folds[pids[i]] = k
        source += "; unstratified (one class has fewer patients than folds)"
    record = {
        "manifest": Path(cfg.manifest).name,
        "manifest_sha256": sha256_file(cfg.manifest),
        "cases": [
            {
                "patient_id": c.patient_id,
                "row": c.row,
                "stack_sha256": hashes[c.patient_id],
                "image_sha256": image_sha256(c.image),
            }
            for c in cases
        ],
    }
    return cases, stacks, folds, labels, source, record, cohort_profile(feats)


def segmentation_folds(cfg: SegConfig) -> dict[str, int]:
    """``{patient_id: fold}`` that ``train_segmentation(cfg)`` would use (the inputs are validated; nothing is
    written): compare it with a grid task's ``folds_<task>.csv`` before planning roi/stack models."""
    return _prepare(cfg, False)[2]


def auto_loader_workers(device, executor: str = "local", workers: int = 1) -> int:
    """``SegConfig.loader_workers`` when unset: 0 on a CPU (the network bounds the step there, and every core
    already trains a fold); on a GPU the cores per fold at a time less one (the training process), at most 3."""
    import os

    if str(getattr(device, "type", device)) != "cuda":
        return 0
    at_once = max(1, int(workers)) if executor != "local" else 1
    return max(0, min(3, (os.cpu_count() or 1) // at_once - 1))


def train_segmentation(
    cfg: SegConfig,
    *,
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
) -> SegRunResult:
    """K-fold segmentation CV with out-of-fold masks and metrics (see the module docstring); the run folder
    follows the run-folder protocol (:meth:`lgenet.runs.folder.RunFolder.open`). The HTML page of the run is
    the workflow's (:func:`lgenet.workflows.segmentation.train_segmentation`)."""
    import os

    import torch
    from tqdm.auto import tqdm

    from lgenet.runs.compute import resolve_device, resolve_precision
    from lgenet.runs.executors import check_executor, make_executor

    check_executor(executor, ray_address)  # Ray importable before anything is written
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    threads = int(
        cfg.num_threads
        or (
            torch.get_num_threads() if workers <= 1 or executor == "local" else max(1, (os.cpu_count() or 1) // workers)
        )
    )
    if cfg.loader_workers is None:
        cfg = cfg.replace(loader_workers=auto_loader_workers(device, executor, workers))
    cases, stacks, folds, labels, source, record, profile = _prepare(cfg, progress)
    rd = SegRunDir(cfg.out)

    def inputs_diff(prev: dict) -> list[str]:
        def key(cases) -> list:  # image_sha256 (since 0.2.0) is derived from the same files as stack_sha256
            return [{k: c.get(k) for k in ("patient_id", "row", "stack_sha256")} for c in cases or []]

        same = prev.get("manifest_sha256") == record["manifest_sha256"] and key(prev.get("cases")) == key(
            record["cases"]
        )
        return [] if same else ["the manifest, an image or a mask differs"]

    with rd.lock():
        decision = rd.open(
            cfg,
            inputs_diff=inputs_diff,
            inputs_sha256=record["manifest_sha256"],
            device=str(device),
            precision=precision,
            threads=threads,
            threads_pinned=bool(cfg.num_threads),
        )
        precision, threads = decision.precision, decision.threads
        ex = make_executor(executor, workers=workers, threads=threads, progress=progress, ray_address=ray_address)
        rd.write_start(cfg, inputs=record, profile=profile, folds={"seg": (folds, labels)})
        with rd.file_log():
            log.info(
                "lgenet %s segment train: %d patients, %d folds (labels from %s), device %s (%s), %d thread(s), "
                "%d loader worker(s) per fold",
                __version__,
                len(cases),
                cfg.folds,
                source,
                device,
                precision,
                threads,
                cfg.loader_workers,
            )
            jobs = [
                SegFoldJob(str(rd.path), cfg, k, device=str(device), precision=precision, threads=threads)
                for k in range(cfg.folds)
            ]
            result = SegRunResult(out_dir=rd.path)
            n_done = sum(j.done() for j in jobs)
            if n_done and progress:
                print(f"resuming {rd.path}: {n_done} of {len(jobs)} folds already done")
            bar = tqdm(total=len(jobs), initial=n_done, desc="segmentation folds", unit="fold", disable=not progress)

            def on_done(o) -> None:
                if o.skipped:
                    result.fits_skipped += 1
                else:
                    result.fits_run += 1
                    bar.update(1)
                    log.info("%s done in %.0f s (%s)", o.job.name, o.seconds, o.worker or "here")

            try:
                ex.run(jobs, on_done)
            finally:
                bar.close()
            summary, table, figures = summarise_segmentation(rd, cfg, label_source=source)
            result.summary, result.table, result.figures = summary, table, figures
            if cfg.quality and not (rd.path / QUALITY_FILE).is_file():
                from lgenet.segment.quality_fit import fit_run_quality

                fit_run_quality(rd.path, progress=progress)
            if cfg.quality and (rd.path / QUALITY_FILE).is_file():
                from lgenet.segment.as_applied import as_applied, as_applied_done

                if not as_applied_done(rd.path):
                    as_applied(rd.path, progress=progress)
                summary, table, figures = summarise_segmentation(rd, cfg, label_source=source)
                result.summary, result.table, result.figures = summary, table, figures
    return result


def summarise_segmentation(rd: SegRunDir, cfg: SegConfig, *, label_source: str = "") -> tuple[dict, str, list[Path]]:
    """seg_metrics.csv, seg_summary.json, agreement figures and the printed table from the fold records; with the
    out-of-fold figures as ``segment apply`` runs the models (:mod:`lgenet.segment.as_applied`) under
    ``as_applied`` when they were measured."""
    from lgenet.evaluation.segmentation import plot_agreement
    from lgenet.segment.apply import SEGMENTED
    from lgenet.segment.as_applied import AS_APPLIED_RECORD, as_applied_done

    if not label_source:  # summarised again after the CV (``segment quality``): the CV's own words kept
        label_source = (rd.read_json(rd.summary_json) or {}).get("label_source", "")
    rows = []
    for k in range(cfg.folds):
        rows += read_rows(rd.fold_dir(k) / "predictions.csv")
    rows.sort(key=lambda r: r["patient_id"])
    write_rows(rd.metrics_csv, rows, SEG_METRIC_FIELDS)
    summary: dict = {
        "n": len(rows),
        "folds": cfg.folds,
        "label_source": label_source,
        "lge_threshold": cfg.lge_threshold,
        **_measures(rows, cfg),
    }
    summary["auc_label"] = f"expert whole-LV LGE > {cfg.lge_threshold:g} % (from the masks)"
    col = lambda name: np.array([number(r[name]) for r in rows])  # noqa: E731
    summary["localised_fraction"] = float(np.nanmean(col("localised_fraction"))) if rows else None
    fits = [json.loads((rd.fold_dir(k) / "fit.json").read_text()) for k in range(cfg.folds)]
    summary["seconds_total"] = round(sum(f.get("seconds_total", 0) for f in fits), 1)
    summary["compute"] = fits[0].get("compute") if fits else None
    record = rd.read_json(rd.as_applied_dir / AS_APPLIED_RECORD) if as_applied_done(rd.path) else None
    if record:
        applied = read_rows(rd.as_applied_dir / "seg_metrics.csv")
        refused = {r["patient_id"] for r in read_rows(rd.as_applied_dir / "looks.csv") if r["status"] != SEGMENTED}
        m = _measures(applied, cfg, unmeasured=refused)
        summary["as_applied"] = {
            **record,
            **{k: m[k] for k in ("dice_myo", "dice_cavity", "dice_lge")},
            "agreement": {"network": m["agreement"]["network"]},
            "auc_lge": {k: m["auc_lge"][k] for k in ("whole_lv", "basal_slice")},
            "measured": "Dice on every patient (a refused mask is written for review); LGE % agreement and AUC on "
            "the patients it would measure (not refused)",
        }
    atomic_write_text(rd.summary_json, json.dumps(summary, indent=2, allow_nan=True))
    ref = col("lge_percent_expert")
    y = np.array([int(r["lge_label"]) if r["lge_label"] != "" else -1 for r in rows])
    figdir = rd.path / "figures"
    figures = [
        plot_agreement(
            col("lge_percent_pred"),
            ref,
            path=figdir / "seg_agreement.png",
            title="Whole-LV LGE %: out-of-fold segmentation vs expert masks",
            labels=[max(v, 0) for v in y],
        ),
        plot_agreement(
            col("lge_percent_basal_pred"),
            col("lge_percent_basal_expert"),
            path=figdir / "seg_agreement_basal.png",
            title="Basal-slice LGE %: out-of-fold segmentation vs expert masks",
        ),
    ]
    return summary, format_seg_summary(summary), figures


def _measures(rows: list[dict], cfg: SegConfig, *, unmeasured: set[str] = frozenset()) -> dict:
    """Dice spreads, LGE % agreement and AUCs of seg_metrics rows; ``unmeasured``: patients whose burden is not
    reported (left out of the agreement and the AUCs, not of the Dice)."""
    from lgenet.evaluation.metrics import auc_ci
    from lgenet.evaluation.segmentation import agreement

    col = lambda name, sel=None: np.array([number(r[name]) for r in rows if sel is None or sel(r)])  # noqa: E731
    mi = lambda r: number(r["lge_percent_expert"]) > 0  # noqa: E731
    summary: dict = {}

    def spread(v: np.ndarray) -> dict:
        return {
            "mean": float(v.mean()) if v.size else None,
            "sd": float(v.std(ddof=1)) if v.size > 1 else None,
            "median": float(np.median(v)) if v.size else None,
            "n": int(v.size),
        }

    for name, sel in (("dice_myo", None), ("dice_cavity", None), ("dice_lge", mi)):
        v = col(name, sel)
        summary[name] = spread(v[np.isfinite(v)])
    summary["dice_lge"]["cases"] = "patients with expert enhancement"
    # the EMIDEC challenge's convention (its published evaluation code): every patient counts, and a scar-free
    # heart with no predicted enhancement scores 1 (dice() is NaN exactly when both masks are empty)
    v = col("dice_lge")
    summary["dice_lge_all"] = {
        **spread(np.where(np.isnan(v), 1.0, v)),
        "cases": "every patient; no enhancement predicted on a scar-free heart scores 1 "
        "(the EMIDEC challenge's convention)",
    }
    keep = np.array([r["patient_id"] not in unmeasured for r in rows], bool)
    ref = col("lge_percent_expert")[keep] if rows else np.array([])
    summary["agreement"] = {
        m: agreement(col(f"lge_percent_pred{'' if m == 'network' else '_' + m}")[keep], ref)
        for m in ("network", "nsd2", "nsd3", "nsd5", "nsd6", "fwhm")
    }
    summary["agreement_basal"] = agreement(col("lge_percent_basal_pred")[keep], col("lge_percent_basal_expert")[keep])
    y = np.array([int(r["lge_label"]) if r["lge_label"] != "" else -1 for r in rows])
    ok = (y >= 0) & keep
    aucs = {}
    for name, score in (
        ("whole_lv", "lge_percent_pred"),
        ("basal_slice", "lge_percent_basal_pred"),
        ("whole_lv_nsd5", "lge_percent_pred_nsd5"),
        ("whole_lv_fwhm", "lge_percent_pred_fwhm"),
    ):
        s = col(score)
        good = ok & np.isfinite(s)
        try:
            a = auc_ci(y[good], s[good])
            aucs[name] = {"auc": a.auc, "lower": a.lower, "upper": a.upper, "n": a.n, "n_pos": a.n_pos}
        except LgenetError as exc:
            aucs[name] = {"error": str(exc)}
    summary["auc_lge"] = aucs
    return summary


def format_seg_summary(s: dict) -> str:
    from lgenet.evaluation.segmentation import agreement_text

    def d_of(v: dict) -> str:
        return (
            f"{v['mean']:.3f} \u00b1 {v['sd']:.3f} (n={v['n']})" if v.get("mean") is not None and v.get("sd") else "n/a"
        )

    def d(name):
        return d_of(s.get(name, {}))

    lines = [
        f"segmentation, out-of-fold ({s['folds']}-fold CV, n={s['n']} patients)",
        f"  Dice myocardium            {d('dice_myo')}",
        f"  Dice enhancement (MI)      {d('dice_lge')}",
        f"  Dice enhancement (all)     {d('dice_lge_all')}  [empty on empty = 1]",
        f"  Dice LV cavity             {d('dice_cavity')}",
    ]
    for m in ("network", "nsd5", "fwhm"):
        a = s["agreement"].get(m, {})
        if "icc" in a:
            icc_t, bias_t = agreement_text(a)
            lines.append(f"  LGE % {m:<8} vs expert    ICC {icc_t}, r {a['pearson_r']:.3f}, bias {bias_t}")
    lines += _auc_lines(s["auc_lge"])
    ap = s.get("as_applied")
    if ap:
        lines.append(
            f"as `segment apply` runs the fold models (second look{' and frame scan' if ap.get('frame_scan') else ''}, "
            "score fitted without the patient's fold):"
        )
        lines.append(
            f"  {ap['doubted']} of {ap['patients']} doubted, {ap['replaced']} replaced, {ap['refused']} refused, "
            f"{ap['flagged']} flagged"
        )
        lines.append(f"  Dice myocardium            {d_of(ap.get('dice_myo', {}))}")
        a = ap["agreement"].get("network", {})
        if "icc" in a:
            icc_t, bias_t = agreement_text(a)
            lines.append(f"  LGE % network  vs expert    ICC {icc_t}, bias {bias_t}, n={a['n']}")
        lines += _auc_lines(ap["auc_lge"])
    return "\n".join(lines)


def _auc_lines(aucs: dict) -> list[str]:
    return [
        f"  AUC lge ({name:<14})   {a['auc']:.3f} (95% CI {a['lower']:.3f}\u2013{a['upper']:.3f}), "
        f"n={a['n']} ({a['n_pos']} positive)"
        for name, a in aucs.items()
        if "auc" in a
    ]
