"""The segmentation networks' settings, declared once: :class:`~lgenet.config.SegConfig` holds them (the values of
a new run) and every fold model records them as its :class:`~lgenet.models.segnet.SegSpec` (whose fields default to
the ``absent`` values: what a model saved before a setting existed did).

It lives in this low layer because both the models (below the configuration) and the configuration use it, and the
command line builds its options from it without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from lgenet.conventions.normalisation import NORMALISATION_METHODS
from lgenet.settings import Settings, setting

__all__ = ["SegNetwork"]


@dataclass(frozen=True)
class SegNetwork(Settings):
    """The localiser and the segmenter: windows, widths, input normalisation, the coarse gate and the output kind.

    Two 2-D MONAI UNets work together (see :mod:`lgenet.models.segnet`): the localiser finds the LV on the whole
    slice, the segmenter labels a window centred on it."""

    spacing: float = setting(1.5, help="segmenter pixel size in mm", minimum=0, exclusive_minimum=True, cli=True)
    crop: int = setting(96, help="segmenter window in pixels", minimum=1, cli=True)
    context: int = setting(1, help="2.5-D context: slices on each side as extra input channels", minimum=0)
    channels: tuple[int, ...] = setting((16, 32, 64, 128, 256), help="segmenter UNet widths", cli=True)
    res_units: int = setting(
        2, help="residual units per UNet level", minimum=0, why="residual units per UNet level", cli="--res-units"
    )
    loc_spacing: float = setting(4.0, help="localiser pixel size in mm", minimum=0, exclusive_minimum=True)
    loc_size: int = setting(112, help="localiser canvas in pixels", minimum=1)
    loc_channels: tuple[int, ...] = setting((8, 16, 32, 64, 128), help="localiser UNet widths")
    # 2 (the default from 2026-11-27) takes the percentiles over the filled body outline with zero fill left out,
    # so that a frame without EMIDEC's intensity offset looks the same; 1 is the Otsu-body method of the runs made
    # before (docs/results.md, configuration 5); 3 (the default since 0.3.0) is 2 made robust to bright coil spots
    # (docs/results/segmentation.md, configuration 18)
    normalisation: int = setting(
        3,
        absent=1,
        help="input intensity normalisation: 3 (since 0.3.0) as 2, robust to bright coil spots; 2 percentiles over "
        "the filled body outline with zero fill left out, so frames with and without a stored intensity offset "
        "look alike; 1 the Otsu-body method of runs made before 2026-11-27",
        choices=NORMALISATION_METHODS,
        why="1: Otsu body, 2: filled body, 3: filled body robust to coil spots",
        cli=True,
    )
    loc_shift_mm: float = setting(
        20.0,
        help="how far (mm, each axis) the localiser's training canvases are shifted: the range of LV positions "
        "around the frame centre it learns to find",
        minimum=0,
        exclusive_minimum=True,
        cli=True,
    )
    # > 0 trains a second, coarse localiser; at inference it proposes where the heart is, and when that lies more
    # than loc_shift_mm from the frame centre the localiser also looks on a canvas centred there. With the margin,
    # on EMIDEC at three seeds it cost no Dice on the heart-centred frames and kept every domain shift within 0.015
    # of AUC, where one localiser moved by up to 0.041 at two seeds (docs/results.md, configuration 10)
    coarse_shift_mm: float = setting(
        120.0,
        absent=0.0,
        help="> 0: also train a coarse localiser on canvases shifted by up to this many mm, which finds a heart far "
        "from the frame centre (large fields of view); the localiser also looks there and keeps that canvas if "
        "it sees a larger LV there (--coarse-margin). 0: none, as in runs made before 2026-11-27",
        minimum=0,
        why="0: no coarse localiser",
        cli=True,
    )
    # on EMIDEC's centred frames every re-centring by a near tie (ratios 1.02-1.07) misplaced the windows
    # (docs/results.md, "a margin for the coarse gate"), so 0.1.0-0.2.0 asked for 1.2; with the coarse localiser
    # trained on whole-thorax composites (loc_thorax, since 0.3.0) no margin is needed: configuration 20 kept the
    # EMIDEC Dice (0.841) and found 92 instead of 86 hearts on the whole-thorax proxy, 93 instead of 81 under
    # every proxy at once (docs/results/segmentation.md). Runs made before 2026-11-27 let any margin win (1.0)
    coarse_margin: float = setting(
        1.0,
        absent=1.0,
        help="with a coarse localiser: the proposed canvas wins only if the localiser's LV mass there exceeds the "
        "frame-centred canvas's by this factor",
        minimum=1.0,
        why="how many times larger the LV mass on the re-centred canvas must be",
        cli=True,
    )
    # the coarse localiser's map can hold the heart and a look-alike (a vessel, the RV seen as a ring, tissue
    # outside the heart); with 1 only its largest component is proposed, so a larger look-alike hides the heart
    coarse_candidates: int = setting(
        1,
        absent=1,
        help="with a coarse localiser: how many of its largest LV components are proposed; the localiser looks on "
        "a canvas centred on each far-off one, and the canvas with the largest LV mass wins (--coarse-margin)",
        minimum=1,
        why="the coarse localiser's components proposed to the localiser",
        cli=True,
    )
    # on EMIDEC the regions lost 0.014 of enhancement and 0.028 of cavity Dice against the softmax (the myocardium
    # region comes out thicker): docs/results.md, configuration 9
    regions: bool = setting(
        False,
        help="predict nested regions (LV, myocardium, enhancement; sigmoid, Dice + BCE each) instead of four "
        "exclusive classes (softmax, the default)",
        cli=True,
    )
