"""Tests of lgenet.evaluation.plots: files are written atomically, are real PNGs, carry no metadata."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lgenet.errors import ConfigError
from lgenet.evaluation import MetricsInputError, delong_auc_ci, evaluate_oof, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data(seed=0, n=80, signal=1.5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    y[:2] = [1, 0]
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + signal * y - 1.0)))
    return y, p


@pytest.fixture(scope="module")
def metrics_rows():
    rows = []
    for t, task in enumerate(("lge", "event")):
        y, _ = _data(seed=t)
        for a, arch in enumerate(("resnet50", "inception_v3")):
            for k, init in enumerate(("random", "imagenet", "radimagenet")):
                rng = np.random.default_rng(10 * t + 3 * a + k)
                p = 1 / (1 + np.exp(-(rng.normal(size=y.size) + (0.3 + k) * y - 1.0)))
                rows += [
                    {
                        "task": task,
                        "arch": arch,
                        "init": init,
                        "model": f"{arch}/{init}",
                        "patient_id": f"P{i}",
                        "fold": i % 4,
                        "y_true": int(y[i]),
                        "prob": float(p[i]),
                    }
                    for i in range(y.size)
                ]
    return evaluate_oof(rows)


def _check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000
    with Image.open(path) as im:
        assert im.size[0] > 300 and im.size[1] > 300
        assert im.info.get("dpi", (0, 0))[0] >= 119.9
        text = {k.lower(): v for k, v in im.info.items() if isinstance(v, str)}
    assert "software" not in text and "author" not in text and "title" not in text
    assert b"matplotlib" not in data.lower()
    assert not [q for q in path.parent.iterdir() if q.name.startswith(".")]  # no temp file left


@pytest.fixture
def captured(monkeypatch):
    """Record the figures the plot functions save (to inspect axes without reading pixels)."""
    figs = []
    real = plots.save_figure

    def spy(fig, path, **kw):
        figs.append(fig)
        return real(fig, path, **kw)

    monkeypatch.setattr(plots, "save_figure", spy)
    return figs


def test_plot_roc_png(tmp_path, captured):
    curves = []
    for k, name in enumerate(("resnet50/random", "resnet50/imagenet", "inception_v3/radimagenet")):
        y, p = _data(seed=k, signal=0.5 + k)
        curves.append((name, y, p, delong_auc_ci(y, p) if k else None))
    out = plots.plot_roc(curves, title="LGE burden > 5.7%", path=tmp_path / "roc" / "roc_lge.png")
    assert out == tmp_path / "roc" / "roc_lge.png"
    _check_png(out)
    ax = captured[0].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    r = delong_auc_ci(*_data(seed=1, signal=1.5))
    assert f"resnet50/imagenet \u2014 AUC {r.auc:.2f} ({r.lower:.2f}\u2013{r.upper:.2f})" in labels
    assert any(lbl.startswith("Chance") for lbl in labels)
    assert "n=80" in ax.get_title()
    assert ax.get_aspect() == 1.0


def test_plot_roc_bad_input(tmp_path):
    with pytest.raises(MetricsInputError, match="at least one"):
        plots.plot_roc([], title="x", path=tmp_path / "r.png")
    with pytest.raises(MetricsInputError, match="needs at least one positive and one negative"):
        plots.plot_roc([("m", [0, 0, 0], [0.1, 0.2, 0.3], None)], title="x", path=tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()


def test_plot_auc_bars_png_and_layout(tmp_path, metrics_rows, captured):
    out = plots.plot_auc_bars(metrics_rows, task="lge", path=tmp_path / "auc_bars_lge.png")
    _check_png(out)
    ax = captured[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ResNet50", "InceptionV3"]
    bars = [p for p in ax.patches]
    assert len(bars) == 6
    # fixed colour per initialisation, in the order random, imagenet, radimagenet within each arch
    from matplotlib.colors import to_hex

    got = [to_hex(b.get_facecolor()) for b in sorted(bars, key=lambda b: b.get_x())]
    want = [plots.INIT_COLORS[i].lower() for i in plots.INIT_ORDER] * 2
    assert got == want
    lge = [r for r in metrics_rows if r["task"] == "lge"]
    values = {t.get_text() for t in ax.texts}
    assert {f"{r['auc']:.2f}" for r in lge} <= values
    assert ax.get_ylim()[0] == 0.0  # bars are lengths: the axis starts at 0 (see the test below)
    assert any(abs(line.get_ydata()[0] - 0.5) < 1e-12 for line in ax.get_lines())  # chance line
    assert "n=80" in ax.get_title()


def test_plot_auc_bars_y_axis_starts_at_zero_even_when_every_auc_is_high(tmp_path, metrics_rows, captured):
    rows = [dict(r, auc=0.9, auc_lower=0.8, auc_upper=0.95) for r in metrics_rows if r["task"] == "lge"]
    plots.plot_auc_bars(rows, task="lge", path=tmp_path / "high.png")
    ax = captured[-1].axes[0]
    assert ax.get_ylim()[0] == 0.0
    assert ax.get_yticks()[0] == 0.0 and ax.spines["left"].get_bounds()[0] == 0.0
    assert all(b.get_y() == 0.0 and b.get_height() == pytest.approx(0.9) for b in ax.patches)  # bars from 0
    chance = [line for line in ax.get_lines() if abs(line.get_ydata()[0] - 0.5) < 1e-12]
    assert chance and chance[0].get_zorder() > max(b.get_zorder() for b in ax.patches)  # visible across the bars
    assert [t.get_text() for t in ax.texts] == ["0.90"] * 6  # value labels kept


def test_plot_auc_bars_low_ci_starts_at_zero(tmp_path, metrics_rows, captured):
    rows = [dict(r) for r in metrics_rows if r["task"] == "event"]
    rows[0]["auc_lower"] = 0.2
    plots.plot_auc_bars(rows, task="event", path=tmp_path / "b.png")
    assert captured[-1].axes[0].get_ylim()[0] == 0.0
    with pytest.raises(MetricsInputError, match="no metrics rows for task 'mace'"):
        plots.plot_auc_bars(rows, task="mace", path=tmp_path / "c.png")


def test_plot_confusion_and_calibration(tmp_path, metrics_rows):
    _check_png(plots.plot_confusion(metrics_rows[0], path=tmp_path / "confusion.png"))
    y, p = _data(seed=4)
    _check_png(plots.plot_calibration(y, p, label="resnet50/imagenet", path=tmp_path / "calibration.png"))
    with pytest.raises(MetricsInputError, match="tp, fp, tn, fn"):
        plots.plot_confusion({"tp": 1}, path=tmp_path / "x.png")


def test_save_figure_formats_metadata_and_atomicity(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1], [0, 1])
    pdf = plots.save_figure(fig, tmp_path / "f.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and b"Matplotlib" not in data and b"CreationDate" not in data
    assert plots.save_figure(fig, tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ConfigError, match="must end in"):
        plots.save_figure(fig, tmp_path / "f.jpg")
    with pytest.raises(ConfigError, match="dpi"):
        plots.save_figure(fig, tmp_path / "g.png", dpi=72)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    fig.savefig = boom  # a failure mid-write leaves neither the target nor a temp file
    with pytest.raises(RuntimeError):
        plots.save_figure(fig, tmp_path / "h.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]


def test_no_pyplot_state(tmp_path, metrics_rows):
    import sys

    before = sys.modules.get("matplotlib.pyplot")
    plots.plot_auc_bars(metrics_rows, task="event", path=tmp_path / "e.png")
    if before is None:  # the plotting code never imports pyplot (no global figures to leak)
        assert "matplotlib.pyplot" not in sys.modules
    else:
        assert before.get_fignums() == []
