"""The words of a model bundle: its model card, the training data's licence, the measured performance it carries
(:mod:`lgenet.runs.bundle`, since 0.3.0)."""

from __future__ import annotations

import json
from pathlib import Path

from lgenet.runs.seg import SegRunDir

__all__ = [
    "EMIDEC_LICENCE",
    "DISCLAIMER",
    "data_source",
    "performance",
    "model_card",
    "external_summary",
    "INIT_TERMS",
    "init_terms",
    "classifier_card",
    "classifier_external_summary",
]

EMIDEC_LICENCE = (
    "The weights were trained on the EMIDEC data set (Lalande et al., Data 2020; https://emidec.com), distributed "
    "under the Creative Commons Attribution-NonCommercial-ShareAlike 4.0 licence (CC BY-NC-SA 4.0). A model "
    "derived from it is shared under the same terms: attribution, non-commercial use only, share-alike. "
    "https://creativecommons.org/licenses/by-nc-sa/4.0/\n"
)
DISCLAIMER = "Research use only. Not a medical device; not for diagnosis or treatment."


def data_source(cfg) -> tuple[str, str]:
    """(data set name, licence text) from the run's manifest import sidecar."""
    from lgenet.conventions.files import import_sidecar

    side = import_sidecar(cfg.manifest) if cfg.manifest else None
    importer = None
    if side is not None and side.is_file():
        try:
            importer = json.loads(side.read_text()).get("importer")
        except ValueError:
            importer = None
    if importer == "emidec" or "emidec" in Path(cfg.manifest or "").name.lower():
        return "EMIDEC (Lalande et al., Data 2020), 100 LGE short-axis stacks with expert labels", EMIDEC_LICENCE
    return (
        "the exporting group's own cohort (not public)",
        "The training data's terms were not recorded by lgenet: the exporter must state them here.\n",
    )


def performance(rd: SegRunDir) -> dict:
    s = rd.read_json(rd.path / "seg_summary.json") or {}
    out: dict = {"scope": "out-of-fold on the training cohort (each patient by a fold model that never saw it)"}
    for key in ("n", "folds", "dice_myo", "dice_cavity", "dice_lge"):
        if key in s:
            out[key] = s[key]
    if "agreement" in s and "network" in s["agreement"]:
        out["lge_percent_agreement"] = s["agreement"]["network"]
    if "auc_lge" in s:
        out["auc_lge"] = {k: v for k, v in s["auc_lge"].items() if k in ("whole_lv", "basal_slice")}
    ap = s.get("as_applied")
    if ap:  # since 0.3.0: the same patients as `segment apply` treats them (second look)
        out["as_applied"] = {
            k: ap[k]
            for k in ("scope", "doubted", "replaced", "refused", "flagged", "dice_myo", "agreement", "auc_lge")
            if k in ap
        }
    q = rd.read_json(rd.path / "quality.json")
    if q and "cross_fitted" in q:
        out["quality_flag_cross_fitted"] = q["cross_fitted"].get("all")
    return out


def model_card(meta: dict) -> str:
    lg = meta["lgenet"]
    perf = lg["performance"]

    def stat(d):
        return f"{d['mean']:.3f} ± {d['sd']:.3f} (n = {d['n']})" if isinstance(d, dict) and "mean" in d else "n/a"

    lines = [
        f"# {meta['name']}: model card",
        "",
        f"**{DISCLAIMER}**",
        "",
        "## Intended use",
        meta["intended_use"],
        "",
        "## Training data",
        f"- {lg['training']['data_set']}; {lg['training']['patients']} patients, labels from {lg['training']['labels']}",
        f"- {lg['training']['folds']}-fold cross-validation, seed {lg['training']['seed']}; trained with lgenet "
        f"{lg['training']['lgenet']} on {lg['training']['compute']}; exported by lgenet {lg['exported_by']['lgenet']} "
        f"(commit {lg['exported_by']['commit'] or 'unknown'})",
        "- Licence of the data and therefore of these weights: see LICENSE.txt",
        "",
        "## Measured performance",
        f"- scope: {perf['scope']}",
        f"- myocardium Dice: {stat(perf.get('dice_myo'))}",
        f"- LV cavity Dice: {stat(perf.get('dice_cavity'))}",
        f"- enhancement Dice (patients with expert enhancement): {stat(perf.get('dice_lge'))}",
    ]
    a = perf.get("lge_percent_agreement")
    if a:
        from lgenet.evaluation.segmentation import agreement_text

        icc, bias = agreement_text(a)
        lines.append(f"- LGE % vs expert: ICC {icc}; bias {bias} (n = {a['n']})")
    for k, v in (perf.get("auc_lge") or {}).items():
        if isinstance(v, dict) and v.get("auc") is not None:
            ci = f" ({v['lower']:.3f}-{v['upper']:.3f})" if v.get("lower") is not None else ""
            lines.append(f"- AUC for LGE > 5.7 % ({k.replace('_', ' ')}): {v['auc']:.3f}{ci}")
    ap = perf.get("as_applied")
    if ap:
        lines.append(
            f"- as `segment apply` runs it ({ap['doubted']} doubted masks given a second look, {ap['replaced']} "
            f"replaced, {ap['refused']} refused): myocardium Dice {stat(ap.get('dice_myo'))}"
        )
        a = (ap.get("agreement") or {}).get("network")
        if a and "icc" in a:
            from lgenet.evaluation.segmentation import agreement_text

            icc, bias = agreement_text(a)
            lines.append(f"  - LGE % vs expert: ICC {icc}; bias {bias} (n = {a['n']})")
        v = (ap.get("auc_lge") or {}).get("whole_lv")
        if isinstance(v, dict) and v.get("auc") is not None:
            ci = f" ({v['lower']:.3f}-{v['upper']:.3f})" if v.get("lower") is not None else ""
            lines.append(f"  - AUC for LGE > 5.7 % (whole lv): {v['auc']:.3f}{ci}")
    for e in lg.get("external", []):
        lines.append(f"- external ({e['label']}): {e['summary']}")
    lines += [
        "",
        "## Known failure modes",
        "- Other centres: on whole-thorax fields of view with the heart off-centre, thick and few slices, bright "
        "surface-coil spots and other intensity ranges, masks can land on the wrong structure; lgenet refuses "
        "implausible masks and those the quality score predicts missed, and flags likely wrong ones, but every mask must be checked "
        "(docs/results/segmentation.md, the other-centre proxies).",
        "- The AHA segments are oriented from the image's patient axes (approximate) unless the RV insertion is given.",
        "- Trained on post-infarction LGE; other enhancement patterns (non-ischaemic, sarcoid) are untested.",
        "",
        "## How to use",
        "`lgenet model info THIS.lgenet`; `lgenet segment apply --model THIS.lgenet --manifest cohort.csv --out DIR`",
        "",
    ]
    return "\n".join(lines)


def external_summary(ev: dict) -> str:
    """One line of an external evaluation (:func:`lgenet.segment.evaluate.evaluate_apply`), CIs and n included."""
    from lgenet.evaluation.segmentation import agreement_text

    def ci(d: dict) -> str:
        if not d or d.get("mean") is None:
            return "n/a"
        band = f" ({d['lower']:.3f}-{d['upper']:.3f})" if d.get("lower") is not None else ""
        return f"{d['mean']:.3f}{band}, n = {d['n']}"

    parts = [f"myocardium Dice {ci(ev.get('dice_myo') or {})}"]
    a = ev.get("agreement") or {}
    if "icc" in a:
        icc, bias = agreement_text(a)
        parts.append(f"LGE % ICC {icc}, bias {bias}")
    auc = ev.get("auc_lge") or {}
    if auc.get("auc") is not None:
        band = f" ({auc['lower']:.3f}-{auc['upper']:.3f})" if auc.get("lower") is not None else ""
        parts.append(f"AUC LGE > {ev.get('lge_threshold', 5.7)} % {auc['auc']:.3f}{band}, n = {auc['n']}")
    parts.append(f"{ev.get('n_refused', 0)} of {ev.get('n_labelled', 0)} refused as implausible or no LV")
    return "; ".join(parts)


#: what is known of the initial weights' terms (lgenet ships none of them; a fine-tuned model derives from them)
INIT_TERMS = {
    "radimagenet": "Initial weights: RadImageNet (Mei et al., Radiology: AI 2022). The weights come with no licence "
    "file and the RadImageNet data set is under a data-use agreement: check its terms before sharing a model "
    "fine-tuned from them.",
    "imagenet": "Initial weights: ImageNet-1k (torchvision / Keras). The code is BSD / Apache-2.0 licensed; the "
    "ImageNet images carry non-commercial research terms, which some read as reaching derived weights.",
    "random": "Initial weights: random (no pretrained weights).",
}


def init_terms(inits: dict) -> str:
    """The initial weights' terms, one paragraph per source a bundle's models started from."""
    out = []
    for src, rec in inits.items():
        init = str(rec.get("init") or src).lower()
        base = next((v for k, v in INIT_TERMS.items() if k in init), f"Initial weights: {src}.")
        sha = rec.get("file_sha256")
        out.append(base + (f" (file SHA-256 {sha})" if sha else ""))
    return "\n".join(out) + "\n"


def _ci(v, lo, hi, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    band = f" ({lo:.{digits}f}-{hi:.{digits}f})" if lo is not None and hi is not None and lo == lo else ""
    return f"{v:.{digits}f}{band}"


def classifier_card(meta: dict) -> str:
    """The model card of a classifier bundle (:mod:`lgenet.runs.bundle_classifier`)."""
    lg = meta["lgenet"]
    tr = lg["training"]
    lines = [
        f"# {meta['name']}: model card",
        "",
        f"**{DISCLAIMER}**",
        "",
        "## Intended use",
        meta["intended_use"],
        "",
        "## Model",
        f"- {meta['description']}",
        f"- input: one LGE short-axis frame per patient ({tr['slice']} slice by default), resized to the model's "
        "size and normalised as in training (the bundle's settings)",
        "",
        "## Training data",
        f"- {tr['data_set']}; {tr['patients']} patients; labels from {tr['labels']}",
        f"- {tr['folds']}-fold stratified cross-validation, seed {tr['seed']}, {tr['epochs']} epochs; trained with "
        f"lgenet {tr['lgenet']} on {tr['compute']}; exported by lgenet {lg['exported_by']['lgenet']} (commit "
        f"{lg['exported_by']['commit'] or 'unknown'})",
        "- Licence of the data and of the initial weights, and therefore of these weights: see LICENSE.txt",
        "",
        "## Measured performance (out-of-fold on the training cohort: each patient by a fold model that never saw it)",
    ]
    for t, p in lg["performance"].items():
        what = f"LGE > {tr.get('lge_threshold', 5.7):g} % of the myocardium" if t == "lge" else "clinical event"
        lines.append(
            f"- {t} ({what}), {p['model']}, {p['chosen']}: AUC {_ci(p.get('auc'), p.get('auc_lower'), p.get('auc_upper'))}"
            f" ({p.get('ci_method') or 'CI'}; n = {p.get('n')}, {p.get('n_pos')} positive); at probability "
            f"{p.get('threshold')}: sensitivity {_ci(p.get('sensitivity'), p.get('sensitivity_lower'), p.get('sensitivity_upper'), 2)}, "
            f"specificity {_ci(p.get('specificity'), p.get('specificity_lower'), p.get('specificity_upper'), 2)}; "
            f"Brier {_ci(p.get('brier'), None, None)}, calibration slope {_ci(p.get('cal_slope'), None, None, 2)}"
        )
        if "best of" in str(p.get("chosen")):
            lines.append(
                "  (chosen among several by this same cross-validated AUC, so that AUC carries some optimism: "
                "an external evaluation, `lgenet model evaluate`, measures it without)"
            )
    for e in lg.get("external", []):
        lines.append(f"- external ({e['label']}): {e['summary']}")
    lines += [
        "",
        "## Known failure modes",
        "- One frame per patient: enhancement outside the chosen slice is not seen; a wrong slice choice (apex for "
        "base) changes the answer.",
        "- Small training cohorts give wide AUC intervals (above); other centres, scanners and sequences are untested "
        "unless an external result is listed.",
        "- Grad-CAM maps show where the network looked, not where the enhancement is.",
        "",
        "## How to use",
        "`lgenet model info THIS.lgenet`; `lgenet predict --model THIS.lgenet --task TASK IMAGE... [--cam DIR]`",
        "",
    ]
    return "\n".join(lines)


def classifier_external_summary(ev: dict) -> str:
    """One line per task of a classifier's external evaluation (AUC with its CI and n)."""
    parts = []
    for t, r in ev.items():
        parts.append(
            f"{t}: AUC {_ci(r.get('auc'), r.get('auc_lower'), r.get('auc_upper'))} (n = {r.get('n')}, "
            f"{r.get('n_pos')} positive)"
        )
    return "; ".join(parts)
