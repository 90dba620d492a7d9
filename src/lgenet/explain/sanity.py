"""Sanity checks of a CAM method on a run: does it look at the heart, and does it depend on the model?

Two checks, computed on the out-of-fold CAMs of :mod:`lgenet.explain.oof`:

1. **Heart energy** (where a manifest row has a ``mask``): the share of the CAM's total energy
   (sum of the map on the frame grid) that falls inside the heart, against the share of the frame
   the heart covers -- what a map spread uniformly would score. ``enrichment = energy share /
   area share``; a method passes when the median enrichment is above 1 (more of the map on the
   heart than chance). Heart = labels ``{1, 2, 3, 4}`` by default: for EMIDEC that is LV cavity,
   normal myocardium, infarct and no-reflow (the whole LV); for lgenet's synthetic cohort it is LV
   cavity, myocardium, LGE and the RV cavity. The RV is kept because it is heart (septal and
   RV-insertion enhancement sits on its border) and because widening the region widens the chance
   level with it, so the comparison stays fair. ``heart_labels`` changes it.
2. **Model randomisation** (Adebayo et al., NeurIPS 2018): CAMs of each trained fold model
   against those of the same architecture with all weights re-initialised at random, on the same
   images and for the same class. A map that explains the *model* must change when the model is
   destroyed: the method passes when the median Spearman rank correlation between the two maps is
   below ``max_rho`` (0.5). A method that fails looks at image structure (edges, bright blood),
   not at what the model learnt.

A failing method is reported as such (``passed = False`` with the reason), never dropped.
Results are cached beside the CAMs (``<cams>.sanity.json``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from lgenet.explain.cam import METHOD_LABELS, compute_cams
from lgenet.explain.frames import FrameStore
from lgenet.explain.oof import fit_spec
from lgenet.explain.oof_store import OofCams
from lgenet.explain.overlay import cam_to_frame
from lgenet.models import rebuild_model
from lgenet.utils import atomic_write_text

__all__ = ["HEART_LABELS", "MAX_RHO", "SanityResult", "heart_share", "cam_sanity", "cam_sanity_multi", "plot_sanity"]

log = logging.getLogger("lgenet")
HEART_LABELS = (1, 2, 3, 4)
MAX_RHO = 0.5


@dataclass
class SanityResult:
    task: str
    model: str
    method: str
    layer: str
    heart_labels: list[int]
    max_rho: float
    # heart energy, one entry per row with a usable mask and a non-empty map
    energy_pids: list[str] = field(default_factory=list)
    energy_share: list[float] = field(default_factory=list)
    area_share: list[float] = field(default_factory=list)
    n_no_mask: int = 0
    n_empty: int = 0
    # randomisation
    rand_pids: list[str] = field(default_factory=list)
    rho: list[float] = field(default_factory=list)
    n_rand_undefined: int = 0
    fingerprint: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return METHOD_LABELS.get(self.method, self.method)

    @property
    def median_enrichment(self) -> float:
        if not self.energy_share:
            return float("nan")
        e, a = np.asarray(self.energy_share), np.asarray(self.area_share)
        return float(np.median(e / np.maximum(a, 1e-9)))

    @property
    def median_rho(self) -> float:
        return float(np.median(self.rho)) if self.rho else float("nan")

    @property
    def energy_passed(self) -> bool | None:
        m = self.median_enrichment
        return None if np.isnan(m) else bool(m > 1.0)

    @property
    def randomisation_passed(self) -> bool | None:
        m = self.median_rho
        return None if np.isnan(m) else bool(m < self.max_rho)

    @property
    def passed(self) -> bool | None:
        checks = [c for c in (self.energy_passed, self.randomisation_passed) if c is not None]
        return None if not checks else all(checks)

    def reasons(self) -> list[str]:
        """Why the method failed (empty when it passed)."""
        out = []
        if self.energy_passed is False:
            out.append(
                f"only {100 * np.median(self.energy_share):.0f}% of the map's energy lies on the heart, which covers "
                f"{100 * np.median(self.area_share):.0f}% of the frame (median enrichment {self.median_enrichment:.2f} "
                "\u2264 1: no better than a uniform map)"
            )
        if self.randomisation_passed is False:
            out.append(
                f"maps barely change when the model's weights are randomised (median Spearman rho "
                f"{self.median_rho:.2f} \u2265 {self.max_rho:g}): they follow the image, not the trained model"
            )
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def heart_share(cam_frame: np.ndarray, labels: np.ndarray, heart_labels=HEART_LABELS) -> tuple[float, float] | None:
    """``(energy share, area share)`` of the heart, or None when the map or the heart is empty."""
    heart = np.isin(labels, list(heart_labels))
    total = float(cam_frame.sum())
    if total <= 0 or not heart.any():
        return None
    return float(cam_frame[heart].sum()) / total, float(heart.mean())


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _pick(n_total: int, n: int) -> list[int]:
    if n >= n_total:
        return list(range(n_total))
    return sorted({int(round(v)) for v in np.linspace(0, n_total - 1, n)})


def cam_sanity(
    run_dir: str | Path,
    cams: OofCams,
    store: FrameStore,
    *,
    heart_labels=HEART_LABELS,
    n_random: int = 16,
    max_rho: float = MAX_RHO,
    seed: int = 0,
    refresh: bool = False,
) -> SanityResult:
    """Both checks for one set of out-of-fold CAMs (cached next to them)."""
    return cam_sanity_multi(
        run_dir,
        [cams],
        store,
        heart_labels=heart_labels,
        n_random=n_random,
        max_rho=max_rho,
        seed=seed,
        refresh=refresh,
    )[0]


def cam_sanity_multi(
    run_dir: str | Path,
    cams_list: list[OofCams],
    store: FrameStore,
    *,
    heart_labels=HEART_LABELS,
    n_random: int = 16,
    max_rho: float = MAX_RHO,
    seed: int = 0,
    refresh: bool = False,
) -> list[SanityResult]:
    """:func:`cam_sanity` for several CAM methods of one (task, model): one random network per fold
    serves every method. The random network is the fold model's architecture rebuilt from its
    fit.json with freshly initialised weights (seeded), so no trained weight survives."""
    out: list[SanityResult | None] = []
    todo: list[tuple[int, OofCams, SanityResult, Path]] = []
    for j, cams in enumerate(cams_list):
        fp = {
            **cams.fingerprint,
            "heart_labels": sorted(int(v) for v in heart_labels),
            "n_random": int(n_random),
            "seed": int(seed),
        }
        path = cams.path.with_suffix(".sanity.json")
        cached = None
        if path.is_file() and not refresh:
            try:
                doc = json.loads(path.read_text())
                if doc.get("fingerprint") == fp:
                    doc["max_rho"] = float(max_rho)
                    cached = SanityResult(**doc)
            except (ValueError, TypeError) as exc:
                log.warning("CAM sanity cache %s unreadable (%s); recomputing", path.name, exc)
        out.append(cached)
        if cached is None:
            res = SanityResult(
                task=cams.task,
                model=cams.model,
                method=cams.method,
                layer=cams.layer,
                heart_labels=sorted(int(v) for v in heart_labels),
                max_rho=float(max_rho),
                fingerprint=fp,
            )
            _energy(cams, store, heart_labels, res)
            todo.append((j, cams, res, path))
    if todo:
        first = todo[0][1]
        picks = _pick(len(first), n_random)
        size = first.maps_u8.shape[-1]
        from tqdm.auto import tqdm

        folds = sorted({int(first.folds[i]) for i in picks})
        for k in tqdm(folds, desc=f"CAM sanity {first.task} (random networks)", unit="fold", disable=None, leave=False):
            idx = [i for i in picks if int(first.folds[i]) == k]
            torch.manual_seed(seed * 1000 + k)
            random_net = rebuild_model(
                fit_spec(run_dir, first.task, first.model, k)
            ).eval()  # every weight re-initialised
            x = store.inputs([int(first.rows[i]) for i in idx], size)
            for _, cams, res, _ in todo:
                r = compute_cams(
                    random_net, x, method=cams.method, target_layer=cams.layer, signs=cams.signs[idx].astype(int)
                )
                for j, i in enumerate(idx):
                    rho = _spearman(cams.map(i), r.maps[j])
                    if np.isnan(rho):
                        res.n_rand_undefined += 1
                    else:
                        res.rand_pids.append(cams.patient_ids[i])
                        res.rho.append(rho)
        for j, _, res, path in todo:
            atomic_write_text(path, json.dumps(res.to_dict(), indent=1))
            out[j] = res
    return out  # type: ignore[return-value]


def _energy(cams: OofCams, store: FrameStore, heart_labels, res: SanityResult) -> None:
    for i in range(len(cams)):
        mask = store.mask(int(cams.rows[i]))
        if mask is None:
            res.n_no_mask += 1
            continue
        got = heart_share(cam_to_frame(cams.map(i), mask.shape), mask, heart_labels)
        if got is None:
            res.n_empty += 1
            continue
        res.energy_pids.append(cams.patient_ids[i])
        res.energy_share.append(got[0])
        res.area_share.append(got[1])


def plot_sanity(results: list[SanityResult], *, path: str | Path, title: str = "") -> Path:
    """Two panels: heart energy share vs heart area share (per patient, per method); Spearman rho
    between trained-model and random-model maps (per method), with the pass line."""
    from lgenet.evaluation.canvas import _new_figure, _style_axes, save_figure

    colors = {"gradcam": "#0072B2", "gradcam++": "#D55E00", "hirescam": "#009E73"}
    fig = _new_figure(10.5, 4.4)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": (1.15, 1)})
    have_energy = any(r.energy_share for r in results)
    for r in results:
        if r.energy_share:
            flag = "" if r.energy_passed else "  \u2717 FAILS"
            ax1.scatter(
                r.area_share,
                r.energy_share,
                s=22,
                alpha=0.75,
                color=colors.get(r.method, "0.3"),
                label=f"{r.label}: median enrichment {r.median_enrichment:.2f}{flag}",
            )
    vals = [v for r in results for v in (*r.energy_share, *r.area_share)]
    lim = min(1.0, max(vals) * 1.1) if vals else 1.0
    ax1.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="uniform map (no enrichment)")
    ax1.set_xlim(0, lim)
    ax1.set_ylim(0, lim)
    ax1.set_aspect("equal")
    ax1.set_xlabel("Heart area / frame area", fontsize=10)
    ax1.set_ylabel("CAM energy on the heart / total", fontsize=10)
    ax1.set_title("Does the map look at the heart?\n(one point per patient with a mask)", fontsize=11)
    if not have_energy:
        ax1.text(0.5, 0.5, "no heart masks in the manifest", ha="center", va="center", fontsize=10, color="0.4")
    ax1.legend(fontsize=7.5, loc="lower right", frameon=True, framealpha=0.9)
    ax1.grid(True, color="0.92")
    _style_axes(ax1)

    for j, r in enumerate(results):
        if r.rho:
            jitter = np.linspace(-0.12, 0.12, len(r.rho)) if len(r.rho) > 1 else np.zeros(1)
            ax2.scatter(j + jitter, r.rho, s=20, alpha=0.75, color=colors.get(r.method, "0.3"))
            ax2.plot([j - 0.25, j + 0.25], [r.median_rho] * 2, color="black", lw=2)
            verdict = "passes" if r.randomisation_passed else "\u2717 FAILS"
            ax2.text(
                j,
                1.04,
                f"median {r.median_rho:.2f}\n{verdict}",
                ha="center",
                va="bottom",
                fontsize=8,
                color="black" if r.randomisation_passed else "#C00000",
            )
    if results:
        # the pass line's label sits outside the plotting area, right of the line's end: the points
        # (clipped to the axes) can never cover it, whatever their spread
        ax2.axhline(results[0].max_rho, ls="--", color="#C00000", lw=1)
        ax2.annotate(
            f"pass if\nmedian\n\u03c1 < {results[0].max_rho:g}",
            xy=(1.0, results[0].max_rho),
            xycoords=ax2.get_yaxis_transform(),
            xytext=(4, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=8,
            color="#C00000",
            annotation_clip=False,
        )
    ax2.axhline(0, color="0.6", lw=0.8)
    ax2.set_xticks(range(len(results)))
    ax2.set_xticklabels([r.label for r in results], fontsize=9)
    ax2.set_xlim(-0.6, max(len(results), 1) - 0.4)
    ax2.set_ylim(-1.0, 1.25)
    ax2.set_ylabel("Spearman \u03c1, trained vs randomised model", fontsize=10)
    ax2.set_title("Does the map depend on the trained weights?\n(low \u03c1 = yes; one point per patient)", fontsize=11)
    _style_axes(ax2)
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path)
