"""The AHA 16-segment bullseye of a per-segment value (lgenet.quantify.aha; since 0.3.0).

The standard layout, seen from the apex: basal ring outside, apical inside; anterior at the top, septum on the
left, lateral on the right (Cerqueira et al., Circulation 2002). Each segment shows its number and value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["plot_bullseye"]

#: segment -> (inner radius, outer radius, start angle, end angle in degrees counter-clockwise from 3 o'clock)
_LAYOUT: dict[int, tuple[float, float, float, float]] = {}
for _i, (_lo, _hi) in enumerate([(60, 120), (120, 180), (180, 240), (240, 300), (300, 360), (0, 60)]):
    _LAYOUT[1 + _i] = (0.70, 1.00, _lo, _hi)  # basal 1-6
    _LAYOUT[7 + _i] = (0.40, 0.70, _lo, _hi)  # mid 7-12
for _i, (_lo, _hi) in enumerate([(45, 135), (135, 225), (225, 315), (315, 405)]):
    _LAYOUT[13 + _i] = (0.12, 0.40, _lo, _hi)  # apical 13-16


def plot_bullseye(
    values: Mapping[int, float],
    path: str | Path,
    *,
    title: str = "",
    label: str = "enhanced share of the segment's myocardium (%)",
    vmax: float | None = None,
    note: str = "",
) -> Path:
    """Draw ``values`` (segment 1-16 -> value, NaN: not measured) as a bullseye into ``path`` (.png or .pdf)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    from lgenet.utils import atomic_path

    finite = [float(v) for v in values.values() if v is not None and math.isfinite(float(v))]
    top = vmax if vmax is not None else max([*finite, 1.0])  # an all-zero map keeps a readable 0-1 scale
    norm = colors.Normalize(vmin=0.0, vmax=max(top, 1e-9))
    cmap = matplotlib.colormaps["magma_r"]
    fig = plt.figure(figsize=(4.6, 5.3))
    ax = fig.add_axes((0.13, 0.25, 0.74, 0.63), projection="polar")
    for seg, (r0, r1, a0, a1) in _LAYOUT.items():
        v = values.get(seg)
        ok = v is not None and math.isfinite(float(v))
        face = cmap(norm(float(v))) if ok else (0.85, 0.85, 0.85, 1.0)
        t0, t1 = math.radians(a0), math.radians(a1)
        ax.bar((t0 + t1) / 2, r1 - r0, width=t1 - t0, bottom=r0, color=face, edgecolor="white", linewidth=1.5)
        rgb = np.asarray(face[:3])
        ink = "white" if ok and float(rgb @ [0.299, 0.587, 0.114]) < 0.5 else "black"
        text = f"{seg}\n{float(v):.0f}" if ok else f"{seg}\n–"
        ax.text((t0 + t1) / 2, (r0 + r1) / 2, text, ha="center", va="center", fontsize=7, color=ink)
    ax.set_ylim(0, 1.0)
    ax.set_axis_off()
    for txt, ang in (("anterior", 90), ("septal", 180), ("inferior", 270), ("lateral", 0)):
        ax.text(math.radians(ang), 1.13, txt, ha="center", va="center", fontsize=7, color="0.3")
    cax = fig.add_axes((0.2, 0.145, 0.6, 0.022))
    cb = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal")
    cb.ax.tick_params(labelsize=7)
    cb.set_label(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9, y=0.985)
    if note:
        import textwrap

        fig.text(0.5, 0.015, "\n".join(textwrap.wrap(note, 80)), ha="center", va="bottom", fontsize=6, color="0.35")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
