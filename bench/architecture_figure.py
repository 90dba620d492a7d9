"""Draw docs/architecture.png from the layers contract in pyproject.toml (the figure cannot drift from CI's check).

python bench/architecture_figure.py            # writes docs/architecture.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import tomllib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: one line on what each layer holds (docs/architecture.md says more)
WHAT = {
    "lgenet.cli": "argument handling, one module per command",
    "lgenet.workflows": "what `run`, `segment train`, `demo`, `predict` orchestrate",
    "lgenet.report": "report.html, seg_report.html, Figure 1",
    "lgenet.outcomes": "covariates / image / fusion, Cox",
    "lgenet.explain": "Grad-CAM, sanity checks, galleries",
    "lgenet.training": "classifier grid: fits, jobs, anatomy families",
    "lgenet.segment": "segmentation CV: folds, apply",
    "lgenet.runs": "run-folder protocol, layouts, executors, compute",
    "lgenet.config": "RunConfig, SegConfig, OutcomeSettings",
    "lgenet.models": "backbones, weights, segmentation nets",
    "lgenet.evaluation": "AUC, DeLong, Dice, agreement, plots",
    "lgenet.quantify": "n-SD / FWHM LGE quantification",
    "lgenet.data": "manifest, importers, stacks, synth",
    "lgenet.io": "DICOM, NIfTI, PNG/TIFF readers",
    "lgenet.settings": "how a setting is declared, validated, offered",
    "lgenet.conventions": "labels, LGE threshold, names, schemas",
    "lgenet.utils": "atomic writes, hashing, threads",
    "lgenet.errors": "the error hierarchy",
}


def layers() -> list[list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in data["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [[m.strip() for m in row.split("|")] for row in contract["layers"]]


def main(out: Path = ROOT / "docs" / "architecture.png") -> Path:
    rows = layers()
    h = 0.62
    fig, ax = plt.subplots(figsize=(10, 0.72 * len(rows) + 0.9))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.4, len(rows) * 0.72 + 0.3)
    ax.axis("off")
    for i, row in enumerate(rows):
        y = (len(rows) - 1 - i) * 0.72
        w = 9.4 / len(row)
        for j, mod in enumerate(row):
            x = 0.3 + j * w
            sibling = len(row) > 1
            box = FancyBboxPatch(
                (x + 0.05, y),
                w - 0.1,
                h,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                fc="#e8f0fb" if not sibling else "#fdf1e3",
                ec="#4C72B0" if not sibling else "#DD8452",
                lw=1.2,
            )
            ax.add_patch(box)
            ax.text(
                x + w / 2,
                y + h * 0.64,
                mod.replace("lgenet.", ""),
                ha="center",
                va="center",
                fontsize=10.5,
                weight="bold",
            )
            ax.text(x + w / 2, y + h * 0.26, WHAT.get(mod, ""), ha="center", va="center", fontsize=7.6, color="#333")
        if i < len(rows) - 1:
            ax.add_patch(
                FancyArrowPatch((9.85, y + 0.05), (9.85, y - 0.1), arrowstyle="-|>", mutation_scale=9, color="#777")
            )
    ax.set_title(
        "lgenet layers: each imports only from the layers below it (orange siblings: not from each other)",
        fontsize=10.5,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    return out


if __name__ == "__main__":
    print(main(*(Path(a) for a in sys.argv[1:])))
