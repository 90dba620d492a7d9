"""What `lgenet segment finetune` measures: its own folds over the new centre's cases, each case scored as
``segment apply`` would score it (status, Dice, LGE %, the quality score), and the paired summary of the source
run and the fine-tuning on the same held-out cases (since 0.3.0)."""

from __future__ import annotations

import numpy as np

from lgenet import __version__
from lgenet.config import SegConfig
from lgenet.config.finetune import FinetuneConfig
from lgenet.runs.tables import number
from lgenet.segment.cases import Case
from lgenet.utils import jsonable

__all__ = ["own_folds", "score_case", "summarise_finetune", "format_finetune_summary", "finetune_verdict"]


def own_folds(cases: list[Case], labels: dict[str, int], n_folds: int, seed: int) -> dict[str, int]:
    """``{patient_id: own fold}``: at most one fold per case; stratified on ``labels`` when both strata have at
    least ``n_folds`` cases, else a plain shuffled split."""
    from sklearn.model_selection import KFold, StratifiedKFold

    pids = [c.patient_id for c in cases]
    k = min(int(n_folds), len(pids))
    y = np.array([labels[p] for p in pids])
    counts = np.bincount(y, minlength=2)
    if counts.min() >= k:
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(pids, y)
    else:
        splits = KFold(k, shuffle=True, random_state=seed).split(pids)
    out = {}
    for f, (_, test) in enumerate(splits):
        for i in test:
            out[pids[i]] = f
    return out


def score_case(seg, st, slice_mm, quality: dict | None = None, profile: dict | None = None) -> dict:
    """One case segmented as ``segment apply`` segments it at its defaults (since 0.3.0: with a quality score, a
    doubted mask gets the second look with the frame scan, :mod:`lgenet.segment.second_look`), its status and
    quality score as ``segment apply`` decides them (:func:`lgenet.segment.apply.judge_mask`), Dice and LGE %
    against the corrected mask; ``second_look``: 1 when a second look replaced the first mask."""
    from lgenet.data.shift import shift_warnings
    from lgenet.evaluation.segmentation import class_measures, dice
    from lgenet.segment import second_look as sl
    from lgenet.segment.apply import SEGMENTED, judge_mask
    from lgenet.segment.cases import _stack_features

    res = seg(st.image, st.spacing)
    far = shift_warnings(profile, _stack_features(st)) if profile and quality is not None else []
    judged, replaced = None, 0
    if quality is not None:
        look = sl.second_look(
            seg, st.image, st.spacing, slice_mm, quality, profile_outside=len(far), first=res, scan=True
        )
        res, judged, replaced = look.result, (look.verdict, look.quality), int(bool(look.chosen))
    status, q, _ = judge_mask(res, st.spacing, slice_mm, quality, len(far), image=st.image, judged=judged)
    pred, gt = res.classes, st.classes
    lge = class_measures(pred, st.spacing, slice_mm)["lge_percent"] if status == SEGMENTED else float("nan")
    return {
        "status": status,
        "dice_myo": dice(pred >= 2, gt >= 2),
        "dice_cavity": dice(pred == 1, gt == 1),
        "dice_lge": dice(pred == 3, gt == 3),
        "lge_percent_pred": lge,
        "lge_percent_expert": class_measures(gt, st.spacing, slice_mm)["lge_percent"],
        "second_look": replaced,
        **q,
    }


def summarise_finetune(
    rows: list[dict], cfg: FinetuneConfig, src_cfg: SegConfig, *, n_folds: int, n_members: int
) -> dict:
    """The source run and the fine-tuning on the same held-out cases: ``segment apply``'s evaluation of each, and
    the paired change of the myocardium Dice with its bootstrap CI."""
    from lgenet.segment.evaluate import _mean_ci, evaluate_apply

    def view(suffix: str) -> list[dict]:
        out = []
        for r in rows:
            g = lambda k, r=r: r.get(f"{k}{suffix}")  # noqa: E731
            out.append(
                {
                    "patient_id": r["patient_id"],
                    "status": r[f"status{suffix}"],
                    "dice_myo": g("dice_myo"),
                    "dice_cavity": g("dice_cavity"),
                    "dice_lge": g("dice_lge"),
                    "lge_percent_expert": r["lge_percent_expert"],
                    "lge_percent_pred": r["lge_percent_source"] if suffix else r["lge_percent_pred"],
                    "quality_dice": g("quality_dice"),
                    "quality_flag": g("quality_flag"),
                }
            )
        return out

    gain = np.array([number(r["dice_myo"]) - number(r["dice_myo_source"]) for r in rows])
    return jsonable(
        {
            "lgenet": __version__,
            "n_cases": len(rows),
            "own_folds": n_folds,
            "members": n_members,
            "settings": {"epochs": cfg.epochs, "loc_epochs": cfg.loc_epochs, "lr": cfg.lr, "seed": cfg.seed},
            "source": evaluate_apply(view("_source"), lge_threshold=src_cfg.lge_threshold),
            "finetuned": evaluate_apply(view(""), lge_threshold=src_cfg.lge_threshold),
            "dice_myo_gain": _mean_ci(gain, np.random.default_rng(cfg.seed)),
        }
    )


def format_finetune_summary(s: dict) -> str:
    """The two evaluations and the paired gain, printed."""
    from lgenet.segment.evaluate import format_evaluation

    g = s["dice_myo_gain"]
    gain = (
        f"{g['mean']:+.3f}"
        + (f" (95% CI {g['lower']:+.3f} to {g['upper']:+.3f})" if g.get("lower") is not None else "")
        if g.get("mean") is not None
        else "n/a"
    )
    return "\n".join(
        [
            f"{s['n_cases']} cases of the new centre, each scored by the fine-tuning that did not see it "
            f"({s['own_folds']} own folds, {s['members']} ensemble members)",
            "the source run on them:",
            format_evaluation(s["source"]),
            "fine-tuned:",
            format_evaluation(s["finetuned"]),
            f"myocardium Dice change, paired: {gain}",
            finetune_verdict(g),
        ]
    )


def finetune_verdict(gain: dict) -> str:
    """What the paired Dice change on cases the fine-tuning did not see says about using the adapted run: on the
    proxy centre a fine-tuning on 10 cases could lose Dice (docs/results/segmentation.md, "Fine-tuning at the 0.3.0
    defaults"), so the command says so instead of leaving the reader to find it in the numbers."""
    mean, lower, upper = gain.get("mean"), gain.get("lower"), gain.get("upper")
    if mean is None:
        return "verdict: no paired change to judge (no case measured by both)"
    if lower is not None and lower > 0:
        return "verdict: the fine-tuning raised the Dice on cases it did not see; use the adapted run"
    if upper is not None and upper < 0:
        return "verdict: the fine-tuning lowered the Dice on cases it did not see; keep the source run"
    if mean <= 0:
        return (
            "verdict: no gain on cases the fine-tuning did not see; keep the source run, or correct more cases and "
            "fine-tune again"
        )
    return "verdict: a gain within its uncertainty (the CI includes 0); correct more cases to tell"
