"""``SegConfig``: everything that defines a segmentation run (``lgenet segment train``).

Its settings come in sections, each declared once: the cohort and folds (:class:`SegCohort`), the networks
(:class:`~lgenet.settings.segmentation.SegNetwork`, which every fold model records as its ``SegSpec``), the training
(:class:`SegTraining`, the fold's ``SegTrainParams``) and where it computes. The run's ``seg_config.yaml`` holds them
flat, one ``parameter: value`` line each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lgenet.config.run import TASKS, RunConfig
from lgenet.conventions.labels import EMIDEC
from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.errors import ConfigError
from lgenet.settings import Settings, borrow, setting
from lgenet.settings.segmentation import SegNetwork

__all__ = ["UNNULLED_KINDS", "SegConfig", "SegCohort", "SegTraining"]

#: the mask label keys of a segmentation run (EMIDEC's values by default)
_LABEL_KEYS = ("cavity", "myo", "lge", "other")


#: how ``aug_unnulled`` greys the wall (:class:`lgenet.segment.augment.RandUnnulledWall`)
UNNULLED_KINDS = ("level", "wall")


@dataclass(frozen=True)
class SegCohort(Settings):
    """Which patients, masks and folds: the manifest, the masks' label values, the patient-level folds (stratified
    on task ``stratify`` exactly as ``lgenet run`` assigns that task's folds on the same manifest; for ``lge``
    without ``lge_percent`` in the manifest: the masks' burden) and how the stacks are read."""

    manifest: str | None = setting(
        None, kind="path", help="cohort CSV whose rows have an image stack and its mask", cli=True, resume_free=True
    )
    out: str = setting(
        "runs/seg", kind="path", help="run directory (a rerun resumes finished folds)", cli=True, resume_free=True
    )
    labels: Mapping[str, Any] = setting(
        EMIDEC.to_dict(),
        help="the masks' label values: cavity, myo (whole myocardium), lge (its enhanced part), other (background)",
    )
    folds: int = setting(4, help="folds (the same patient folds as `lgenet run`)", minimum=2, cli=True)
    seed: int = borrow(RunConfig, "seed", help="seed of the folds and the training")
    stratify: str = setting(
        "lge",
        help="task whose folds the segmentation uses; the grid's roi/stack families need the segmentation folds of "
        "their task",
        choices=TASKS,
        cli=True,
    )
    lge_threshold: float = setting(
        LGE_THRESHOLD, help="LGE % that splits the folds' strata and the AUC label", minimum=0, cli=True
    )
    nifti_slice_axis: int = setting(
        2, help="the axis of a NIfTI stack that runs across slices", choices=(0, 1, 2), cli=True
    )
    nifti_basal_end: str = setting(
        "last", help="which end of that axis is the base", choices=("first", "last"), cli=True
    )
    pixel_spacing: float | None = setting(
        None,
        kind="float",
        help="mm per pixel for inputs without one (PNG/TIFF)",
        minimum=0,
        exclusive_minimum=True,
        why="mm",
        cli=True,
    )

    def _check(self) -> None:
        try:
            labels = {
                k: [int(v) for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
                for k, vs in dict(self.labels).items()
            }
        except (TypeError, ValueError):
            raise ConfigError(
                f"segmentation labels {dict(self.labels)!r}: every class needs integer label values, e.g. "
                "{cavity: [1], myo: [2, 3, 4], lge: [3, 4], other: [0]}"
            ) from None
        unknown = sorted(set(labels) - set(_LABEL_KEYS))
        if unknown:
            raise ConfigError(f"segmentation labels: unknown key(s) {unknown}; use cavity, myo, lge, other")
        object.__setattr__(self, "labels", labels)

    def seg_labels(self):
        from lgenet.conventions.labels import SegLabels

        return SegLabels(**{k: tuple(v) for k, v in self.labels.items()})


@dataclass(frozen=True)
class SegTraining(Settings):
    """How each fold's two networks are trained (fixed in advance; nothing is chosen on a test fold)."""

    # 120 for ~30 min on 2 CPU cores; on EMIDEC 240 gained 0.009 of myocardium Dice at 2x the time, and 300 no more
    # than 240 (docs/results.md, configuration 15)
    epochs: int = setting(120, help="segmenter epochs", minimum=1, cli=True)
    loc_epochs: int = setting(15, help="localiser epochs", minimum=1, cli=True)
    # the whole-thorax composites of lgenet.segment.composite: another centre's 350 mm fields of view put the heart
    # off-centre among other round structures, which EMIDEC's heart-centred crops never show (issue "another centre").
    # For both localisers (configuration 17) the EMIDEC out-of-fold Dice fell to 0.831; for the coarse localiser
    # alone with no gate margin (configuration 20, the default since 0.3.0) it stayed 0.841 while the proxies found
    # 92 / 93 hearts of 100 instead of 86 / 81 (docs/results/segmentation.md)
    loc_thorax: float = setting(
        1.0,
        absent=0.0,
        since="0.3.0",
        help="localiser training: whole-thorax composites per training slice (the slice moved off-centre in a "
        "300-420 mm field of view among unlabelled look-alikes); 0: none (as before 0.3.0)",
        minimum=0,
        maximum=4,
        why="composites per training slice",
        cli=True,
    )
    # configuration 17's cost fell on heart-centred EMIDEC frames, where the frame-centred localiser misplaced
    # windows; "coarse" leaves that localiser as before and gives the composites only to the coarse localiser,
    # which proposes a far-off heart and must win by the gate's margin (configuration 19)
    loc_thorax_nets: str = setting(
        "coarse",
        absent="both",
        since="0.3.0",
        help="which localisers learn from the loc_thorax composites: both, only the coarse localiser, or "
        "coarse+centred (the frame-centred localiser from composites that keep the heart within loc_shift_mm of "
        "the centre, the look-alikes around it)",
        choices=("both", "coarse", "coarse+centred"),
        cli=True,
    )
    batch_size: int = setting(16, help="mini-batch size", minimum=1, cli=True)
    lr: float = setting(
        1e-3, help="Adam learning rate (polynomial decay to zero)", minimum=0, exclusive_minimum=True, cli=True
    )
    weight_decay: float = setting(1e-5, help="Adam weight decay", minimum=0)
    augment: bool = setting(
        True, help="augment the training windows", cli_off="--no-augment", help_off="no augmentation (not recommended)"
    )
    # the same kinds and ranges of transforms as MONAI's per-sample affine, ~10x cheaper per sample on a CPU (the
    # intensity part stays MONAI's, per sample). On EMIDEC the CV took 26.9 instead of 35.5 min; over two seeds its
    # Dice matched the per-sample path's (0.836/0.837 vs 0.838/0.837) and all domain shifts at once moved AUC by
    # -0.067/-0.070 against -0.039/-0.130 (docs/results.md, configurations 3 and 4 and their seed-1 replicate)
    batch_augment: bool = setting(
        True,
        absent=False,
        help="draw the augmentation geometry per batch with torch affine grids (since 2026-11-27: ~25% less CV time "
        "on a CPU, the same Dice and robustness on EMIDEC over two seeds)",
        cli="--batch-augment",
        cli_off="--per-sample-augment",
        help_off="MONAI's per-sample affine instead (what runs made before 2026-11-27 used)",
    )
    # 0.5 / 0.3 (since configuration 3) were widened for normalisation 1, under which a frame without EMIDEC's
    # intensity offset moved the normalised tissue by x1.3, -0.25 (docs/results.md, configuration 12)
    aug_intensity_scale: float = setting(
        0.5,
        help="training augmentation: intensities x(1 +- this), probability 0.6",
        minimum=0,
        maximum=1,
        exclusive_maximum=True,
        why="the augmentation's intensity factor x(1 +- v)",
        cli=True,
    )
    aug_intensity_shift: float = setting(
        0.3,
        help="training augmentation: intensities +- this on the normalised [0, 1] scale, probability 0.6",
        minimum=0,
        maximum=1,
        exclusive_maximum=True,
        why="the augmentation's intensity offset +- v",
        cli=True,
    )
    # another centre's surface coils and wrap-around put bright spots near the field's edges, which EMIDEC's frames
    # do not show; under the bench's proxy of them the 0.2.0 segmenter found 39 hearts of 100 (issue "another
    # centre"); with normalisation 3 it found all 100, and 81 instead of 37 under every proxy at once (docs/results/segmentation.md, configuration 18)
    aug_edge: float = setting(
        0.3,
        absent=0.0,
        since="0.3.0",
        help="training augmentation: probability of bright surface-coil spots near the window's edges and a faint "
        "wrap-around of its far edge; 0: none (as before 0.3.0)",
        minimum=0,
        maximum=1,
        why="the probability of edge artefacts per training window",
        cli=True,
    )
    # an inversion time set off the normal myocardium's null point leaves it grey, and the segmenter then calls it
    # enhanced: under the bench's proxy of it (lgenet.data.centre_shift.unnulled_myocardium) the 0.3.0 default's
    # LGE % ICC fell from 0.90 to 0.72, and to 0.44 with every other proxy (docs/results/segmentation.md,
    # "myocardium not nulled"). At 0.3 (configuration 23) EMIDEC stayed as good but the ICC under that proxy did not
    # move (0.722 -> 0.713) nor did the over-call; with kind "wall" at 0.5 (24) EMIDEC's ICC fell to 0.872, and at 0.25
    # (25) the whole-thorax ICC over every mask fell by 0.117; so the default stays 0
    aug_unnulled: float = setting(
        0.0,
        absent=0.0,
        since="0.3.0",
        help="training augmentation of the segmenter: probability of a window whose normal myocardium is left grey "
        "(tissue at its level raised 0-60 % of the way to the blood pool's, the range up to it compressed); 0: none",
        minimum=0,
        maximum=1,
        why="the probability of an un-nulled myocardium per training window",
        cli=True,
    )
    # "level" (configuration 23) raises every tissue of the wall's level, as a scanner would; "wall" raises only the
    # labelled normal wall, the bench proxy's own mechanism (configuration 24), so a gain under that proxy is an upper
    # bound of what it buys on a real centre; at 0.5 it raised that proxy's ICC 0.72 -> 0.85 but EMIDEC's fell to 0.872
    aug_unnulled_kind: str = setting(
        "level",
        absent="level",
        since="0.3.0",
        help="how aug_unnulled greys the wall: level (one intensity curve: every tissue at the normal wall's level "
        "raised) or wall (only the labelled normal myocardium raised, with ~1 pixel soft edges)",
        choices=UNNULLED_KINDS,
        cli=True,
    )
    # unset ("auto"): none on a CPU, as every run before 2026-11-28; on a GPU the cores left per fold less one, at
    # most 3 (3 with 4 folds at a time on 16 cores: the whole EMIDEC CV in 2.8 min on an H100, docs/results.md
    # configuration 15). The run records the number it used; the workers draw other random streams than the
    # training process, so a run's folds must all use the same number (a resume checks it)
    loader_workers: int | None = setting(
        None,
        kind="int",
        absent=0,
        help="processes per fold that make the augmented batches ahead of each step",
        minimum=0,
        why="DataLoader worker processes per fold; 0: none",
        default_text="auto: none on a CPU; on a GPU, where the CPU-side augmentation bounds the step, the cores per "
        "fold at a time less one, at most 3",
        cli=True,
    )


@dataclass(frozen=True)
class SegConfig(SegTraining, SegNetwork, SegCohort):
    """Everything that defines a segmentation run (``lgenet segment train``): the cohort (:class:`SegCohort`), the
    networks (:class:`~lgenet.settings.segmentation.SegNetwork`), the training (:class:`SegTraining`) and how it
    infers and computes."""

    tta: bool = setting(
        True,
        help="average flipped predictions at inference",
        cli_off="--no-tta",
        help_off="no flip test-time augmentation",
        resume_free=True,
    )
    quality: bool = setting(
        True,
        absent=False,
        since="0.3.0",
        help="after the CV, fit the quality score that predicts each mask's myocardium Dice (quality.json; every "
        "fold model segments its held-out patients as acquired and under other-centre proxies, a few minutes)",
        cli_off="--no-quality",
        help_off="no quality score (segment apply then flags nothing; `lgenet segment quality RUN` fits it later)",
        resume_free=True,
    )
    device: str = borrow(RunConfig, "device")  # one declaration for both kinds of run
    precision: str = borrow(RunConfig, "precision")
    num_threads: int | None = setting(
        None, kind="int", help="torch threads per fold", minimum=1, cli="--threads", resume_free=True
    )

    @staticmethod
    def resume_view(old: dict, new: dict) -> tuple[dict, dict]:
        """The saved and this run's settings as a resume compares them: without a coarse localiser (in both),
        the coarse margin plays no part."""
        if not float(old.get("coarse_shift_mm") or 0) and not float(new.get("coarse_shift_mm") or 0):
            old = {**old, "coarse_margin": new.get("coarse_margin")}
        return old, new

    def spec(self):
        """The fold models' :class:`~lgenet.models.segnet.SegSpec`: this run's network section."""
        from lgenet.models.segnet import SegSpec

        return SegSpec(**SegNetwork.values_of(self))
