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
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


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
    # --max-rho -1 makes every method fail the randomisation check: failures must be flagged, not hidden
    assert main(["report", str(run.run_dir), "--examples", "2", "--max-rho", "-1"]) == 0
    assert "report.html" in capsys.readouterr().out
    assert [f.stat().st_mtime_ns for f in fits] == stamps
    html = (run.run_dir / "report.html").read_text(encoding="utf-8")
    assert "fails its sanity checks" in html and "CAM sanity:" in html


def test_report_opens_in_headless_chromium(run, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (CI installs Debian's chromium: apt-get install -y chromium)")
    url = (run.run_dir / "report.html").resolve().as_uri()
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile1'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, env=env,
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
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile0'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", broken.as_uri()],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert 'data-images-bad="broken-one"' in ctl.stdout and 'data-images-ok="' not in ctl.stdout
    assert any("CONSOLE" in ln and "failed to load" in ln for ln in ctl.stderr.splitlines())

    shot = tmp_path / "report.png"
    res = subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--hide-scrollbars",
         "--window-size=1280,2400", f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB"))
    assert px.shape[:2] == (2400, 1280)
    assert px.std() > 20 and len(np.unique(px.reshape(-1, 3), axis=0)) > 200, "blank screenshot"


def test_report_rejects_an_unknown_cam_layer(run, capsys):
    assert main(["report", str(run.run_dir), "--cam-layer", "layer9"]) == 2
    assert "CAM target layer 'backbone.layer9' is not a module" in capsys.readouterr().err
