"""The canvas every lgenet figure is drawn on: a clean matplotlib Figure, the house style, the save.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure`` rendered by the Agg
canvas): pyplot's global state is never touched, no window is opened, and nothing needs closing.
Every figure is written through :func:`save_figure` -- an atomic write (a crash never leaves a
half-written PNG) with the metadata that could identify a machine, person or time stripped.
The palette (Okabe-Ito, colour-blind safe) and the display names of inits, architectures and tasks
are shared by the evaluation plots and the report's Figure 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lgenet.errors import ConfigError
from lgenet.utils import atomic_path

__all__ = [
    "DPI",
    "save_figure",
    "INIT_ORDER",
    "INIT_COLORS",
    "INIT_LABELS",
    "ARCH_LABELS",
    "TASK_TITLES",
]

DPI = 150
# Okabe-Ito colour-blind-safe palette
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
_LINESTYLES = ("-", "-", "-", "-", "-", "-", "--", "--", "-.", "-.")
INIT_ORDER = ("random", "imagenet", "radimagenet")
INIT_COLORS = {"random": "#9A9A9A", "imagenet": "#0072B2", "radimagenet": "#D55E00", "seg": "#56B4E9"}
INIT_LABELS = {
    "random": "Random init",
    "imagenet": "ImageNet",
    "radimagenet": "RadImageNet",
    "seg": "from the segmentation",
}
ARCH_LABELS = {
    "resnet50": "ResNet50",
    "inception_v3": "InceptionV3",
    "densenet121": "DenseNet121",
    "efficientnet_b0": "EfficientNet-B0",
    "vgg16": "VGG16",
    "inception_resnet_v2": "InceptionResNetV2",
}
TASK_TITLES = {"lge": "LGE burden", "event": "Clinical event"}
_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
# metadata keys matplotlib fills in by default (software version, creation date); None drops them
_CLEAN_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
    "svg": {"Creator": None, "Date": None},
}


# ---------------------------------------------------------------------------------- saving
def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Save ``fig`` atomically as PNG, PDF or SVG (chosen by the suffix), without identifying metadata.

    The software/version and creation-date entries matplotlib normally embeds are removed, and
    no Title/Author is written, so the file carries nothing but the picture (and PDFs/SVGs are
    byte-reproducible). ``dpi`` must be >= 120.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"figure path {str(path)!r} must end in one of {sorted(_FORMATS)}, got {path.suffix!r}")
    if not isinstance(dpi, (int, float)) or dpi < 120:
        raise ConfigError(f"figure dpi must be >= 120, got {dpi!r}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=dict(_CLEAN_METADATA[fmt]), facecolor="white")
    return path


def _style_axes(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=9)
