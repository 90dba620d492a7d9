"""The segmentation run directory and its fold ensemble (:func:`load_segmenter`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lgenet.config import SegConfig
from lgenet.errors import LgenetError
from lgenet.runs.folder import RunFolder

__all__ = [
    "SegRunDir",
    "load_segmenter",
    "segmentation_table",
    "SEG_METRIC_FIELDS",
    "SEG_RESUME_FREE",
]

#: settings that change no fold: a resume may differ in them
SEG_RESUME_FREE = {"out", "num_threads", "device", "manifest", "tta"}
SEG_METRIC_FIELDS = [
    "patient_id",
    "fold",
    "n_slices",
    "dice_myo",
    "dice_lge",
    "dice_cavity",
    "lge_label",
    "lge_percent_expert",
    "lge_percent_pred",
    "lge_percent_basal_expert",
    "lge_percent_basal_pred",
    "lge_percent_pred_nsd2",
    "lge_percent_pred_nsd3",
    "lge_percent_pred_nsd5",
    "lge_percent_pred_nsd6",
    "lge_percent_pred_fwhm",
    "myo_ml_expert",
    "myo_ml_pred",
    "enh_ml_expert",
    "enh_ml_pred",
    "myo_mass_g_pred",
    "enh_mass_g_pred",
    "cavity_ml_pred",
    "slices_with_enhancement_pred",
    "lge_sectors_pred",
    "transmurality_max_pred",
    "transmurality_mean_pred",
    "localised_fraction",
    "lge_percent_manifest",
]


def segmentation_table(run: str | Path) -> tuple[Path, str]:
    """The per-patient table of a segmentation run and what made it: ``seg_metrics.csv`` (out-of-fold,
    ``lgenet segment train``) or ``segmentation.csv`` (``lgenet segment apply --manifest``)."""
    from lgenet.errors import ConfigError

    p = Path(run)
    for name, kind in (
        ("seg_metrics.csv", "out-of-fold (lgenet segment train)"),
        ("segmentation.csv", "lgenet segment apply"),
    ):
        if (p / name).is_file():
            return p / name, kind
    raise ConfigError(
        f"segmentation run {p} holds neither seg_metrics.csv (`lgenet segment train`) nor "
        "segmentation.csv (`lgenet segment apply --manifest`); pass the --out of one of them"
    )


class SegRunDir(RunFolder):
    """The segmentation run's layout on the run-folder protocol (:class:`~lgenet.runs.folder.RunFolder`)."""

    CONFIG_NAME = "seg_config.yaml"
    WHAT = "an lgenet segmentation run"
    MAKER = "`lgenet segment train`"
    FITS = "fold(s)"
    RESUME_FREE = frozenset(SEG_RESUME_FREE)

    def config_defaults(self) -> dict:
        """A saved config that lacks a setting (made before it existed): the setting's declared ``absent`` value,
        which reproduces what the run did (e.g. ``batch_augment`` False, ``normalisation`` 1)."""
        return SegConfig.absent_values()

    def reset(self) -> None:
        """Forget an unfinished start (no finished fold): fold folders, masks, the fold assignment."""
        import shutil

        for p in (self.path / "fits", self.masks_dir):
            if p.exists():
                shutil.rmtree(p)
        self.folds_path("seg").unlink(missing_ok=True)

    def config_class(self):
        return SegConfig

    def fold_dir(self, k: int) -> Path:
        return self.path / "fits" / "seg" / f"fold{int(k)}"

    def finished_fits(self) -> list[Path]:
        root = self.path / "fits" / "seg"
        return sorted(root.glob("fold*/fit.json")) if root.is_dir() else []

    @property
    def masks_dir(self) -> Path:
        return self.path / "masks"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "seg_metrics.csv"

    @property
    def summary_json(self) -> Path:
        return self.path / "seg_summary.json"

    def load_states(self, k: int) -> tuple[dict, dict, dict, dict | None]:
        """(spec dict, localiser state, segmenter state, coarse localiser state or None) of fold ``k``; clear
        errors for damaged files."""
        import warnings

        import torch

        f = self.fold_dir(k) / "model.pt"
        redo = f"delete {f.parent} and rerun `lgenet segment train` with the run's settings to refit it"
        if not f.is_file():
            raise LgenetError(f"segmentation fold model {f} is missing; {redo}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ck = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - damaged or foreign file
            from lgenet.errors import short_reason

            raise LgenetError(f"segmentation fold model {f} is unreadable ({short_reason(exc)}); {redo}") from None
        if not isinstance(ck, dict) or not {"spec", "localiser", "segmenter"} <= set(ck):
            raise LgenetError(f"{f} is not an lgenet segmentation fold model; {redo}")
        if float(ck["spec"].get("coarse_shift_mm", 0) or 0) > 0 and "coarse_localiser" not in ck:
            raise LgenetError(
                f"segmentation fold model {f} was trained with a coarse localiser (coarse_shift_mm > 0) "
                f"but holds none; {redo}"
            )
        return ck["spec"], ck["localiser"], ck["segmenter"], ck.get("coarse_localiser")


def load_segmenter(
    run_dir: str | Path,
    folds: Sequence[int] | None = None,
    *,
    device: str = "cpu",
    tta: bool | None = None,
    coarse: bool = True,
):
    """The fold ensemble (or the given folds) of a finished segmentation run, ready to apply.

    ``coarse=False`` leaves a run's coarse localiser out (the localiser and the segmenter are trained
    independently of it, so this is exactly the run without the option)."""
    import dataclasses

    from lgenet.models.seginfer import Segmenter
    from lgenet.models.segnet import SegSpec

    rd = SegRunDir(run_dir)
    cfg = rd.load_config()
    ks = list(range(cfg.folds)) if folds is None else list(folds)
    states, spec = [], None
    for k in ks:
        sd, loc, seg, coarse_state = rd.load_states(k)
        spec = SegSpec.from_dict(sd)
        if not coarse:
            spec, coarse_state = dataclasses.replace(spec, coarse_shift_mm=0.0), None  # type: ignore[call-arg]
        states.append((loc, seg, coarse_state))
    return Segmenter(spec, states, device=device, tta=cfg.tta if tta is None else tta)
