"""The study report: written by every run, self-contained, regenerated without retraining, and
opened in a real headless browser (Debian chromium; skipped with the reason when absent)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import lgenet.explain.oof as oof_mod
import lgenet.training.trainer as trainer_mod
from lgenet.cli import main
from small_run import small_run

SECTIONS = ("cohort", "protocol", "results", "cams", "figure1", "environment")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return small_run(tmp_path_factory)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_run_writes_a_self_contained_report(run):
    html_path = run.run_dir / "report.html"
    assert html_path.is_file(), "run_experiment must end by writing report.html"
    html = html_path.read_text(encoding="utf-8")
    for s in SECTIONS:
        assert f'<section id="{s}">' in html
    # nothing is fetched: no external URL in any src/href/url(), every image is an embedded PNG
    assert not re.search(r'(src|href)\s*=\s*"(?!data:|#)', html)
    assert not re.search(r"url\(|@import|https?://", html)
    n_img = html.count("<img ")
    pngs = _images(html)
    assert n_img == len(pngs) >= 12
    for raw in pngs:
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
    # the content a cardiologist reads
    assert "AUC (95% CI)" in html and "DeLong p vs best" in html and "Brier" in html
    assert "LGE burden &gt; 5.7%" in html and "Prevalence" in html
    assert "fold model that never saw that patient" in html
    sha = __import__("json").loads((run.run_dir / "run.json").read_text())["manifest_sha256"]
    assert sha in html
    for f in ("figure1.png", "figure1.pdf"):
        assert (run.run_dir / f).stat().st_size > 10_000
    with Image.open(run.run_dir / "figure1.png") as im:
        assert im.size[0] > 1500 and im.size[1] > 1500
    assert (run.run_dir / "figure1.pdf").read_bytes()[:5] == b"%PDF-"
    assert list((run.run_dir / "cams" / "lge" / "tiny__random").glob("gradcam__*.npz"))


def test_rereport_never_retrains_and_uses_the_cam_cache(run, monkeypatch, capsys):
    fits = sorted(run.run_dir.glob("fits/*/*/fold*/fit.json"))
    stamps = [f.stat().st_mtime_ns for f in fits]

    def no(*a, **k):
        raise AssertionError("the report must not train or recompute cached CAMs")

    monkeypatch.setattr(trainer_mod, "fit", no)
    monkeypatch.setattr(oof_mod, "_cams_for_fold", no)
    # what a report killed mid-write leaves (temp files of its atomic writes) is removed by the next one
    stale = [run.run_dir / "figures" / ".cam_gallery_lge.abc123.tmp.png", run.run_dir / ".report.xyz789.tmp.html"]
    for p in stale:
        p.write_bytes(b"partial")
    # --max-rho -1 makes every method fail the randomisation check: failures must be flagged, not hidden
    assert main(["report", str(run.run_dir), "--examples", "2", "--max-rho", "-1"]) == 0
    assert "report.html" in capsys.readouterr().out
    assert [f.stat().st_mtime_ns for f in fits] == stamps
    assert not any(p.exists() for p in stale)
    html = (run.run_dir / "report.html").read_text(encoding="utf-8")
    assert "fails its sanity checks" in html and "CAM sanity:" in html


def test_report_opens_in_headless_chromium(run, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (CI installs Debian's chromium: apt-get install -y chromium)")
    url = (run.run_dir / "report.html").resolve().as_uri()
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(
        [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile1'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    n_img = (run.run_dir / "report.html").read_text(encoding="utf-8").count("<img ")
    m = re.search(r'data-images-ok="(\d+)"', dom.stdout)
    bad = re.search(r'data-images-bad="([^"]*)"', dom.stdout)
    assert m is not None, f"images did not all load: {bad.group(1) if bad else 'load handler never ran'}"
    assert int(m.group(1)) == n_img
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, "console messages: " + "\n".join(console)

    # control: the same checks do catch a broken image (the page's own script logs a console error)
    from lgenet.report.html import page

    broken = tmp_path / "broken.html"
    broken.write_text(page("control", [], [], '<img src="data:image/png;base64,AAAA" alt="broken-one">'))
    ctl = subprocess.run(
        [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile0'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            broken.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert 'data-images-bad="broken-one"' in ctl.stdout and 'data-images-ok="' not in ctl.stdout
    assert any("CONSOLE" in ln and "failed to load" in ln for ln in ctl.stderr.splitlines())

    shot = tmp_path / "report.png"
    res = subprocess.run(
        [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--hide-scrollbars",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB"))
    assert px.shape[:2] == (2400, 1280)
    assert px.std() > 20 and len(np.unique(px.reshape(-1, 3), axis=0)) > 200, "blank screenshot"


def test_report_rejects_an_unknown_cam_layer(run, capsys):
    assert main(["report", str(run.run_dir), "--cam-layer", "layer9"]) == 2
    assert "CAM target layer 'backbone.layer9' is not a module" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- Figure 1, without a run
def _fig1_metrics(inits):
    rows = []
    for task in ("lge", "event"):
        for a, arch in enumerate(("resnet50", "inception_v3")):
            for k, init in enumerate(inits):
                auc = 0.6 + 0.05 * a + 0.1 * k
                rows.append(
                    {
                        "task": task,
                        "arch": arch,
                        "init": init,
                        "model": f"{arch}/{init}",
                        "auc": auc,
                        "auc_lower": auc - 0.1,
                        "auc_upper": min(1.0, auc + 0.1),
                        "n": 80,
                        "n_pos": 20,
                        "sensitivity": 0.7,
                        "specificity": 0.8,
                        "ppv": 0.5,
                        "npv": 0.9,
                        "threshold": 0.5,
                        "best": a == 1 and k == len(inits) - 1,
                    }
                )
    return rows


def _draw_figure1(tmp_path, monkeypatch, inits, *, with_cams=True):
    """plot_figure1 on hand-made metrics and fake CAMs (no training); returns the drawn Figure."""
    import types

    from lgenet.config import RunConfig
    from lgenet.explain.gallery import CATEGORIES, Case
    from lgenet.report import figure1

    figs = []
    real = figure1.save_figure
    monkeypatch.setattr(figure1, "save_figure", lambda fig, p, **kw: (figs.append(fig), real(fig, p, **kw))[1])
    kw = {}
    if with_cams:
        rng = np.random.default_rng(0)
        monkeypatch.setattr(
            figure1, "case_images", lambda cams, store, c: (rng.random((32, 32)),) * 2 + (np.zeros((32, 32, 3)),)
        )
        cams = types.SimpleNamespace(model="resnet50/random", method="gradcam", signs=np.array([1, -1, 1, -1]))
        cases = {
            c: [Case(category=c, index=i, patient_id=f"SYN00{i}", prob=0.5, y_true=1)] for i, c in enumerate(CATEGORIES)
        }
        truth = {f"SYN00{i}": f"LGE {i}.5%" for i in range(4)}
        kw = {"panels": figure1.CamPanels(task="lge", cams=cams, cases=cases, truth=truth)}
    figure1.plot_figure1(metrics=_fig1_metrics(inits), cfg=RunConfig(inits=inits), paths=[tmp_path / "f1.png"], **kw)
    fig = figs[-1]
    fig.canvas.draw()
    return fig


def test_figure1_auc_panels_keep_clear_of_the_case_titles(tmp_path, monkeypatch):
    fig = _draw_figure1(tmp_path, monkeypatch, ("random", "imagenet"))
    r = fig.canvas.get_renderer()
    bars = [ax for ax in fig.axes if "AUC by architecture" in ax.get_title()]
    cases = [
        ax
        for ax in fig.axes
        if ax.get_title().split("\n")[0] in ("True positive", "False negative", "True negative", "False positive")
    ]
    assert len(bars) == 2 and len(cases) == 4
    lowest_bar_panel = min(ax.get_tightbbox(r).y0 for ax in bars)  # tick labels and legend included
    highest_case_title = max(t.get_window_extent(r).y1 for ax in cases for t in (ax.title, *ax.texts))
    assert lowest_bar_panel - highest_case_title >= 0.15 * fig.dpi  # a visible gap, not touching text
    for ax in bars:  # C-D: bars from 0 with the chance line, as in plot_auc_bars
        assert ax.get_ylim()[0] == 0.0 and all(p.get_y() == 0.0 for p in ax.patches)


def test_figure1_title_names_the_inits_that_ran(tmp_path, monkeypatch):
    title = _draw_figure1(tmp_path, monkeypatch, ("random",), with_cams=False).get_suptitle()
    assert "transfer" not in title.lower() and "random initialisation" in title
    title = _draw_figure1(tmp_path, monkeypatch, ("random", "imagenet")).get_suptitle()
    assert "transfer learning (ImageNet)" in title and "random initialisation" in title

    from lgenet.config import RunConfig
    from lgenet.report.figure1 import figure_title

    assert "transfer learning (ImageNet, RadImageNet)" in figure_title(
        _fig1_metrics(("imagenet", "radimagenet")), RunConfig()
    )
    # the metrics (what was evaluated) decide, not the config's full default grid
    only_random = figure_title(_fig1_metrics(("random",)), RunConfig())
    assert "transfer" not in only_random.lower()
    assert figure_title([r for r in _fig1_metrics(("random",)) if r["task"] == "lge"], RunConfig()).startswith(
        "Figure 1. LGE detection with"
    )
