"""The adapted run's layout (``lgenet segment finetune``, since 0.3.0) on the run-folder protocol.

The folder is two things at once:

* the fine-tuning's own run (:class:`FinetuneDir`): ``finetune_config.yaml``, ``inputs.json`` (the new centre's
  cases and the source run's fold models, by content hash), ``folds_finetune.csv`` (the own folds),
  ``fits/finetune/fold<f>/`` (one per own fold: its held-out cases' rows, ``fit.json`` last; while the fold runs,
  the fine-tuned ensemble members it has finished, so that a killed run redoes only the member it was training),
  ``finetune_rows.csv`` and ``finetune_summary.json`` (every case scored by the fine-tuning that did not see it,
  beside the source run's masks of the same cases);
* a segmentation run (:class:`~lgenet.runs.seg.SegRunDir`) that ``segment apply --run`` takes: ``seg_config.yaml``
  (the source run's, with this cohort), ``fits/seg/fold<m>/model.pt`` (the source's fold model ``m`` fine-tuned on
  every case), ``members.json`` (which fold models it holds), the source run's ``quality.json``.
"""

from __future__ import annotations

from pathlib import Path

from lgenet.config.finetune import FinetuneConfig
from lgenet.runs.folder import RunFolder

__all__ = ["FinetuneDir", "FINETUNE_ROW_FIELDS"]

#: the columns of ``finetune_rows.csv``: each case under the source run and under the fine-tuning that did not see it
FINETUNE_ROW_FIELDS = (
    "patient_id",
    "own_fold",
    "n_slices",
    "status_source",
    "status",
    "dice_myo_source",
    "dice_myo",
    "dice_cavity_source",
    "dice_cavity",
    "dice_lge_source",
    "dice_lge",
    "lge_percent_expert",
    "lge_percent_source",
    "lge_percent_pred",
    "quality_dice_source",
    "quality_flag_source",
    "quality_dice",
    "quality_flag",
    "second_look_source",  # since 0.3.0: 1 when a second look replaced the first mask (as segment apply does)
    "second_look",
)


class FinetuneDir(RunFolder):
    """The fine-tuning's side of an adapted run (module docstring)."""

    CONFIG_NAME = "finetune_config.yaml"
    WHAT = "an lgenet fine-tuned segmentation run"
    MAKER = "`lgenet segment finetune`"
    FITS = "fit(s)"
    RESUME_FREE = FinetuneConfig.resume_free_names()

    def config_class(self):
        return FinetuneConfig

    def config_defaults(self) -> dict:
        return FinetuneConfig.absent_values()

    def fold_dir(self, f: int) -> Path:
        return self.path / "fits" / "finetune" / f"fold{int(f)}"

    def member_dir(self, m: int) -> Path:
        """Where ensemble member ``m`` fine-tuned on every case is written (a segmentation run's fold folder)."""
        return self.path / "fits" / "seg" / f"fold{int(m)}"

    def finished_fits(self) -> list[Path]:
        root = self.path / "fits"
        return sorted(root.glob("*/fold*/fit.json")) if root.is_dir() else []

    @property
    def rows_csv(self) -> Path:
        return self.path / "finetune_rows.csv"

    @property
    def summary_json(self) -> Path:
        return self.path / "finetune_summary.json"

    def reset(self) -> None:
        """Forget an unfinished start (no finished fit): the fit folders, the folds, the adapted run's files."""
        import shutil

        if (self.path / "fits").exists():
            shutil.rmtree(self.path / "fits")
        self.folds_path("finetune").unlink(missing_ok=True)
        for name in ("seg_config.yaml", "members.json", "quality.json", self.rows_csv.name, self.summary_json.name):
            (self.path / name).unlink(missing_ok=True)
