"""``FinetuneConfig``: what defines the adaptation of a segmentation run to a new centre (``lgenet segment finetune``).

The run to adapt brings its networks and how it reads stacks; the fine-tuning adds its own cohort (the new centre's
corrected cases), its own folds over that cohort (so that its accuracy is measured on cases it did not see) and how
long and how fast every network of the ensemble is trained on from its weights. Since 0.3.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from lgenet.config.run import RunConfig
from lgenet.config.seg import SegCohort, SegConfig
from lgenet.settings import Settings, borrow, setting

__all__ = ["FinetuneConfig"]


@dataclass(frozen=True)
class FinetuneConfig(Settings):
    """The source run, the new centre's corrected cases, the own folds and the fine-tuning (fixed in advance)."""

    model: str | None = setting(
        None,
        kind="path",
        help="the segmentation run to adapt (the --out of `lgenet segment train`), or its bundle NAME.lgenet or "
        "hf://owner/repo[/file.lgenet]",
        cli=True,
    )
    manifest: str | None = setting(
        None,
        kind="path",
        help="the new centre's cases: a cohort CSV whose rows have an image stack and its corrected mask",
        cli=True,
    )
    out: str = setting(
        "runs/finetune",
        kind="path",
        help="the adapted run (a segmentation run `segment apply --run` takes; a rerun resumes finished fits)",
        cli=True,
        resume_free=True,
    )
    members: tuple[int, ...] | None = setting(
        None,
        kind="list",
        item="int",
        help="which of the source run's fold models to adapt, e.g. 0 2 (the adapted run's ensemble); default all",
        default_text="all",
        cli=True,
    )
    labels: dict = borrow(SegCohort, "labels", help="the corrected masks' label values")
    # 5 folds of 10 cases: each fine-tuning sees 8 and is scored on the other 2; fewer cases than folds: one case each
    folds: int = setting(
        5,
        help="own folds over the new centre's cases (at most one per case): the reported accuracy is each case's "
        "from the fine-tuning that did not see it",
        minimum=2,
        cli=True,
    )
    seed: int = borrow(RunConfig, "seed", help="seed of the own folds and the fine-tuning")
    # ~10 corrected stacks of 2-6 slices are ~3 batches of 16 per epoch: 200 epochs are ~500 steps, an eighth of
    # what a fold's segmenter takes from scratch on EMIDEC. 60 / 10 (~120 steps) left the masks of the proxy centre
    # almost as they were (docs/results/segmentation.md, "Fine-tuning on a proxy centre")
    epochs: int = setting(200, help="segmenter fine-tuning epochs", minimum=1, cli=True)
    # on configuration 20's fold models and 10 proxy-centre cases, fine-tuning the localisers too (30 epochs) lost
    # test Dice (0.727 -> 0.676, 0.770 -> 0.653) and found fewer hearts; keeping them lost less (0.715, 0.746) and
    # found as many (docs/results/segmentation.md, "Fine-tuning at the 0.3.0 defaults")
    loc_epochs: int = setting(
        0,
        help="localiser (and coarse localiser) fine-tuning epochs; 0 (the default since 0.3.0): keep them as trained",
        minimum=0,
        cli=True,
    )
    lr: float = setting(
        3e-4,
        help="Adam learning rate of the fine-tuning (polynomial decay to zero)",
        minimum=0,
        exclusive_minimum=True,
        cli=True,
    )
    final: bool = setting(
        True,
        help="after the own folds, fine-tune on every case: the adapted run's models",
        cli_off="--no-final",
        help_off="only the own-fold estimate (the adapted run then holds no models)",
    )
    device: str = borrow(RunConfig, "device")
    precision: str = borrow(RunConfig, "precision")
    num_threads: int | None = borrow(SegConfig, "num_threads", help="torch threads of the fine-tuning")
