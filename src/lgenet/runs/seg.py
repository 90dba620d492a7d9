"""The segmentation run directory and its fold ensemble (:func:`load_segmenter`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lgenet.config import SegConfig
from lgenet.errors import LgenetError
from lgenet.runs.folder import RunFolder

__all__ = [
    "SegRunDir",
    "check_segmentation_inputs",
    "load_segmenter",
    "segmentation_table",
    "SEG_METRIC_FIELDS",
    "SEG_APPLY_FIELDS",
]

#: settings that change no fold: a resume may differ in them
#: the network's burden read with the threshold methods of lgenet.quantify, and the mask's size and shape
#: measures: columns of both per-patient tables below
THRESHOLD_FIELDS = [
    "lge_percent_pred_nsd2",
    "lge_percent_pred_nsd3",
    "lge_percent_pred_nsd5",
    "lge_percent_pred_nsd6",
    "lge_percent_pred_fwhm",
]
SHAPE_FIELDS = [
    "myo_mass_g_pred",
    "enh_mass_g_pred",
    "cavity_ml_pred",
    "slices_with_enhancement_pred",
    "lge_sectors_pred",
    "transmurality_max_pred",
    "transmurality_mean_pred",
    "localised_fraction",
]
#: seg_metrics.csv (``segment train``, out-of-fold): one row per patient
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
    *THRESHOLD_FIELDS,
    "myo_ml_expert",
    "myo_ml_pred",
    "enh_ml_expert",
    "enh_ml_pred",
    *SHAPE_FIELDS,
    "lge_percent_manifest",
]
#: segmentation.csv (``segment apply``): one row per patient; Dice and the expert burden when the input has a mask
SEG_APPLY_FIELDS = [
    "patient_id",
    "n_slices",
    "lge_percent_pred",
    "lge_percent_basal_pred",
    *THRESHOLD_FIELDS,
    "myo_ml_pred",
    "enh_ml_pred",
    *SHAPE_FIELDS,
    "dice_myo",
    "dice_lge",
    "dice_cavity",
    "lge_percent_expert",
    # the quality score (lgenet.segment.quality, since 0.3.0): predicted myocardium Dice and |LGE % error|, the
    # flag, and the per-slice agreement of the models' flipped predictions (apex to base)
    "quality_dice",
    "quality_lge_error_pp",
    "quality_flag",
    "slice_agreement",
    "fold_agreement",
    "mask",
    "overlay",
    "dicom_seg",  # since 0.3.0, with --dicom-seg: the DICOM SEG and SR measurement report
    "dicom_sr",
    "aha_orientation",  # since 0.3.0: how the AHA segments were oriented, or why they were not computed
    # since 0.3.0: whether the blood beside the ring lies on the patient's right-anterior side, where the RV is
    # (lgenet.segment.rv_side), or why it could not be judged
    "rv_side",
    "status",
    "notes",
]
#: aha_segments.csv (``segment apply``, since 0.3.0): one row per patient and AHA segment (lgenet.quantify.aha)
AHA_FIELDS = ["patient_id", "segment", "level", "name", "myo_ml", "lge_percent", "transmurality_max", "orientation"]


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


def check_segmentation_inputs(run: str | Path, records, *, manifest_sha256: str | None = None) -> list[str]:
    """Refuse a segmentation run (``segment train`` or ``segment apply --manifest``) that segmented other images
    than ``records``' (a cohort's manifest rows) for the same patient IDs: another cohort that reuses the IDs.

    The run's ``inputs.json`` holds, per patient, ``image_sha256``: the content hash of the image file or series
    folder it read (:func:`lgenet.data.inputs.image_sha256`, recorded since 0.2.0). The same hash is recomputed
    here from each row's own image path and must be equal. Exact (file bytes, whatever the path) and cheap (no
    image is decoded). Returns what could not be checked (a run made before 0.2.0, an image that is not there),
    for the caller to log; raises :class:`~lgenet.errors.DataError` naming the rows that differ."""
    import json

    from lgenet.data.inputs import image_sha256
    from lgenet.errors import DataError

    p = Path(run) / "inputs.json"
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        rec = None
    cases = {c.get("patient_id"): c for c in (rec or {}).get("cases", []) if isinstance(c, dict)}
    if not any("image_sha256" in c for c in cases.values()):
        if rec is not None and manifest_sha256 is not None and rec.get("manifest_sha256") == manifest_sha256:
            return []  # the very manifest the segmentation run read
        return [
            f"segmentation run {run} records no image hashes ({p.name} missing, damaged or written before 0.2.0): "
            "cannot check that it segmented this cohort's images; rerun `lgenet segment apply --manifest` on "
            "this cohort to be sure"
        ]
    differ, unchecked, done = [], [], {}
    for r in records:
        want = cases.get(r.patient_id, {}).get("image_sha256")
        if want is None:
            continue  # a patient the run did not segment: the callers name those
        img = Path(r.image)
        if not img.exists():
            unchecked.append(f"row {r.row} (patient {r.patient_id})")
            continue
        key = str(img.resolve())
        if key not in done:
            done[key] = image_sha256(img)
        if done[key] != want:
            differ.append(f"row {r.row} (patient {r.patient_id})")
    if differ:
        raise DataError(
            f"segmentation run {run} segmented other images than this manifest's for {len(differ)} patient(s) "
            f"with the same ID: {', '.join(differ[:10])}{' ...' if len(differ) > 10 else ''} (their image "
            f"content differs from the hash in {p}: a segmentation of another cohort, or images changed since). "
            "Segment this cohort (`lgenet segment apply --run SEG_RUN --manifest THIS_MANIFEST --out DIR`) and "
            "pass that folder"
        )
    if unchecked:
        return [
            f"segmentation run {run}: the image of {len(unchecked)} row(s) is not there to compare with the run's "
            f"record ({', '.join(unchecked[:5])}); their measures are used unchecked"
        ]
    return []


class SegRunDir(RunFolder):
    """The segmentation run's layout on the run-folder protocol (:class:`~lgenet.runs.folder.RunFolder`)."""

    CONFIG_NAME = "seg_config.yaml"
    WHAT = "an lgenet segmentation run"
    MAKER = "`lgenet segment train`"
    FITS = "fold(s)"
    RESUME_FREE = SegConfig.resume_free_names()

    def config_defaults(self) -> dict:
        """A saved config that lacks a setting (made before it existed): the setting's declared ``absent`` value,
        which reproduces what the run did (e.g. ``batch_augment`` False, ``normalisation`` 1)."""
        return SegConfig.absent_values()

    def reset(self) -> None:
        """Forget an unfinished start (no finished fold): fold folders, masks, the fold assignment."""
        import shutil

        for p in (self.path / "fits", self.masks_dir, self.as_applied_dir):
            if p.exists():
                shutil.rmtree(p)
        self.folds_path("seg").unlink(missing_ok=True)
        for name in ("quality.json", "quality_rows.csv"):  # the quality score of the forgotten start
            (self.path / name).unlink(missing_ok=True)

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
    def as_applied_dir(self) -> Path:
        """The out-of-fold figures as ``segment apply`` runs the fold models (second look and frame scan, the
        quality score fitted without the patient's fold; since 0.3.0): ``seg_metrics.csv`` (every patient),
        ``looks.csv`` (the doubted ones), ``masks/`` (the masks a second look replaced)."""
        return self.path / "as_applied"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "seg_metrics.csv"

    @property
    def summary_json(self) -> Path:
        return self.path / "seg_summary.json"

    @property
    def members_path(self) -> Path:
        return self.path / "members.json"

    def members(self, cfg) -> list[int]:
        """The fold models the run's ensemble holds: every fold of its CV, or (an adapted run of ``segment
        finetune`` that adapted some of its source's members, since 0.3.0) those ``members.json`` lists."""
        if not self.members_path.is_file():
            return list(range(cfg.folds))
        try:
            ks = json.loads(self.members_path.read_text())["members"]
            if not ks or not all(isinstance(k, int) and 0 <= k < cfg.folds for k in ks):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise LgenetError(
                f"{self.members_path} is damaged: it should list the run's fold models, e.g. "
                '{"members": [0, 1, 2, 3]}; restore it from the run that wrote it'
            ) from None
        return [int(k) for k in ks]

    def check_folds(self, cfg) -> None:
        """Refuse a ``seg_config.yaml`` whose ``folds`` differs from the run's fold files (``folds_seg.csv`` and
        ``fits/seg/fold*``): the config was edited after the run, so a fold model would look missing."""
        p = self.folds_path("seg")
        if not p.is_file():
            return  # an unfinished or damaged run: load_states names the missing model
        n = max(self.read_folds("seg").values(), default=-1) + 1
        if n and n != cfg.folds:
            raise LgenetError(
                f"{self.config_path} says folds: {cfg.folds}, but the run was trained with {n} folds ({p.name}, "
                f"{self.path / 'fits' / 'seg'}/fold0..fold{n - 1}): the config was edited after the run. Restore "
                f"folds: {n} in {self.config_path.name}"
            )

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
    engine: str = "torch",
):
    """The fold ensemble (or the given folds) of a finished segmentation run, ready to apply.

    ``coarse=False`` leaves a run's coarse localiser out (the localiser and the segmenter are trained
    independently of it, so this is exactly the run without the option). ``engine='onnx'``: the networks on
    ONNX Runtime (:mod:`lgenet.models.seg_onnx`), exported once per fold model into the cache."""
    import dataclasses

    from lgenet.models.seginfer import Segmenter
    from lgenet.models.segnet import SegSpec

    rd = SegRunDir(run_dir)
    cfg = rd.load_config()
    rd.check_folds(cfg)
    ks = rd.members(cfg) if folds is None else list(folds)
    states, spec = [], None
    for k in ks:
        sd, loc, seg, coarse_state = rd.load_states(k)
        spec = SegSpec.from_dict(sd)
        if not coarse:
            spec, coarse_state = dataclasses.replace(spec, coarse_shift_mm=0.0), None  # type: ignore[call-arg]
        states.append((loc, seg, coarse_state))
    tta = cfg.tta if tta is None else tta
    if engine == "onnx":
        return Segmenter.from_nets(spec, *_onnx_nets(rd, ks, spec, states), tta=tta)
    return Segmenter(spec, states, device=device, tta=tta)


def _onnx_nets(rd: SegRunDir, ks: list[int], spec, states: list) -> tuple[list, list, list]:
    """Each fold's networks on ONNX Runtime, exported on first use into ``<cache>/onnx/<model.pt SHA-256>/``
    (MONAI is imported only then)."""
    import torch

    from lgenet import __version__
    from lgenet.models.seg_onnx import OrtNet, export_net, write_stamp
    from lgenet.runs.bundle_archive import cache_root
    from lgenet.utils import sha256_file

    nets: tuple[list, list, list] = ([], [], [])
    for k, (loc, seg, coarse_state) in zip(ks, states):
        folder = cache_root() / "onnx" / sha256_file(rd.fold_dir(k) / "model.pt")[:32]
        parts = [("localiser", loc, 1, spec.loc_size), ("segmenter", seg, spec.in_channels, spec.crop)]
        if spec.coarse_shift_mm > 0:
            parts.append(("coarse_localiser", coarse_state, 1, spec.loc_size))
        for i, (name, state, ch, size) in enumerate(parts):
            f = folder / f"{name}.onnx"
            if not f.is_file():
                from lgenet.models.segnet import build_localiser, build_segmenter

                net = (build_segmenter if name == "segmenter" else build_localiser)(spec)
                net.load_state_dict(state)
                export_net(net, ch, size, f)
                write_stamp(folder, {"lgenet": __version__, "torch": torch.__version__, "fold": k})
            nets[min(i, 2)].append(OrtNet(f))
    return nets
