"""``lgenet demo``: a synthetic cohort, a segmentation, and a small grid that shows a model learning.

What the demo runs, and why (issue "the first ten minutes"; figures in docs/results.md):

1. ``lgenet synth``'s cohort (116 patients, 128 px, planted LV, myocardium and enhancement, label maps).
2. A segmentation CV on it (``lgenet segment train`` with :data:`DEMO_SEG`: a small 2-D UNet at 2 mm,
   20 epochs, no augmentation -- one synthetic scanner, so robustness is not what the demo shows).
3. The grid, in the segmentation's folds: the **headline** model is ``burden:whole/seg`` -- the
   predicted whole-LV LGE %, out of fold, used as the score (no fitting) -- and the **seed protocol**
   row is InceptionV3 (the faster of the study's two backbones here: a 4-epoch fit at 112 px took
   14-18 s on 2 cores, ResNet50 ~20 s)
   from random initialisation on the basal frame, at a demo budget (3 epochs, 112 px) far below the
   study's 100 epochs: it shows the protocol's outputs (ROC, CAMs), not its ability.

At the demo's budget a CNN from random initialisation does not learn the synthetic enhancement from
one basal frame of 87 training patients (out-of-fold AUC 0.45-0.60 in every demo so far); a network that
is told where the myocardium is -- the segmenter, trained on the planted label maps -- does. That is
the lesson of the EMIDEC benchmarks too (docs/results.md).

Disk: the demo keeps no CNN fold model after its report (``keep_models='none'``); to apply the
headline model to new images use ``lgenet segment apply --run <dir>/seg IMAGE -o seg.csv`` (the
predicted LGE %), and for CNN fold models run ``lgenet run`` on the cohort.
"""

from __future__ import annotations

from pathlib import Path

from lgenet.config import SegConfig

__all__ = ["DEMO_RUN", "DEMO_SEG", "SYNTH_SEG_LABELS", "demo_seg_config", "demo_segmentation"]

#: ``lgenet synth``'s label values as segmentation classes (RV cavity = 4 counts as background)
SYNTH_SEG_LABELS = {"cavity": [1], "myo": [2, 3], "lge": [3], "other": [0, 4]}

#: what ``lgenet demo``'s grid changes from the seed protocol (its own defaults; the command line and
#: --config override them)
#: fp32: the demo was designed and measured in fp32; side by side on 2026-11-27 with bf16 autocast (the CPU
#: default since) it took 3 min 48 s instead of 4 min 06 s but its segmentation's enhancement Dice fell from 0.398
#: to 0.359 and the headline AUC from 0.93 to 0.89 (one seed each, docs/results.md)
DEMO_RUN = dict(
    families=("burden", "classifier"),
    archs=("inception_v3",),
    inits=("random",),
    image_size=112,
    epochs=3,
    batch_size=8,
    precision="fp32",
)

#: the demo's segmentation: a small network that learns the synthetic anatomy in ~2 minutes on 2 CPU cores
DEMO_SEG = dict(
    labels=SYNTH_SEG_LABELS,
    spacing=2.0,
    crop=64,
    channels=(8, 16, 32, 64),
    res_units=1,
    loc_spacing=4.0,
    loc_size=64,
    loc_channels=(8, 16, 32, 64),
    epochs=20,
    loc_epochs=4,
    batch_size=8,
    lr=3e-3,
    augment=False,
    coarse_shift_mm=0.0,
    loc_thorax=0.0,
    quality=False,
)  # the synthetic frames centre the heart (no coarse localiser, no thorax composites); the quality score's
#: fit (a few minutes, `lgenet segment quality <dir>/seg`) is left to the user to keep the demo short


def demo_seg_config(
    manifest: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    folds: int = 4,
    device: str = "auto",
    precision: str = "auto",
    num_threads: int | None = None,
    lge_threshold: float = 5.7,
) -> SegConfig:
    """The demo's :class:`SegConfig`: :data:`DEMO_SEG` on ``manifest``, stratified on task ``lge`` with the
    grid's folds and seed, so that the burden scores pair with the grid's models fold for fold."""
    return SegConfig(
        manifest=str(manifest),
        out=str(out),
        seed=seed,
        folds=folds,
        device=device,
        precision=precision,
        num_threads=num_threads,
        lge_threshold=lge_threshold,
        **DEMO_SEG,
    )


def demo_segmentation(
    manifest: str | Path,
    out: str | Path,
    *,
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    **kw,
):
    """Train (or resume) the demo's segmentation CV; returns its :class:`~lgenet.segment.SegRunResult`.

    ``lgenet demo`` runs it (and its grid) with ``executor='process'``, two workers of one torch thread
    each on a machine with two or more cores: the demo's small networks parallelise poorly over threads,
    and the segmentation took 108 s that way against 166 s one two-thread fold at a time on 2 cores
    (docs/results.md)."""
    from lgenet.workflows.segmentation import train_segmentation

    cfg = demo_seg_config(manifest, out, **kw)
    return train_segmentation(
        cfg, progress=progress, executor=executor, workers=workers, report=True, ray_address=ray_address
    )
