"""The report's descriptive sections: cohort, protocol, segmentation, outcomes, environment."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

import lgenet.report.html as H
from lgenet import __version__
from lgenet.config import RunConfig
from lgenet.explain.cam import METHOD_LABELS, check_method
from lgenet.report.cohort import CohortSummary
from lgenet.report.options import ReportOptions
from lgenet.report.text import ordinal

__all__ = ["cohort_section", "protocol_section", "segmentation_section", "outcomes_section", "env_section"]

log = logging.getLogger("lgenet")


def cohort_section(cs: CohortSummary | None, note: str, fig: Path | None) -> str:
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


def protocol_section(cfg: RunConfig, metrics: Sequence[dict], run_json: dict) -> str:
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
        f"{ordinal(cfg.intensity_percentiles[0])}\u2013{ordinal(cfg.intensity_percentiles[1])} percentiles and scaled to [0, 1], "
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


def segmentation_section(cfg: RunConfig) -> str:
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


def outcomes_section(run: Path) -> str:
    from lgenet.report.outcomes import outcomes_section

    return outcomes_section(run / "outcomes")


def _method_words(method: str) -> str:
    m = check_method(method, auto=True)
    return "chosen per task by the sanity checks (auto)" if m == "auto" else METHOD_LABELS[m]


def env_section(run_json: dict, manifest_name: str, opts: ReportOptions) -> str:
    env = run_json.get("environment", {})
    dash = "\u2014"
    pairs = [
        ("Manifest", manifest_name or dash),
        ("Manifest SHA-256", run_json.get("manifest_sha256", dash)),
        ("Run finished", run_json.get("finished", dash)),
        (
            "Grid time (fits and evaluation; the outcomes and this report not included)",
            f"{run_json.get('seconds', dash)} s",
        ),
        ("Fits run / resumed", f"{run_json.get('fits_run', dash)} / {run_json.get('fits_skipped', dash)}"),
    ]
    pairs += [(k.replace("_", " "), v) for k, v in env.items()]
    pairs += [
        ("Report by lgenet", __version__),
        ("Report written", time.strftime("%Y-%m-%d %H:%M %z")),
        (
            "CAM method / target",
            f"{_method_words(opts.cam_method)} / {opts.cam_target}",
        ),
    ]
    return H.section(
        "environment",
        "Environment and provenance",
        H.kv_table(pairs) + '<p class="note">The report is regenerated from the run directory with '
        "<code>lgenet report RUN_DIR</code>; it never retrains, and CAMs are cached in "
        "<code>cams/</code>.</p>",
    )
