"""CAMs: shape, range, determinism, target layers, the out-of-fold rule, overlays, predict --cam."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import lgenet.explain.oof as oof_mod
from lgenet.data.manifest import load_manifest
from lgenet.errors import ConfigError
from lgenet.explain import (
    CAM_METHODS,
    FrameStore,
    LogitTarget,
    OutOfFoldError,
    cam_to_frame,
    compute_cams,
    ensemble_cams,
    heart_share,
    oof_cams,
    overlay_rgb,
    read_folds,
    resolve_target_layer,
    select_cases,
    write_overlays,
)
from lgenet.explain.sanity import SanityResult
from lgenet.models import build_model
from lgenet.workflows.predict import load_run_config, predict
from small_run import FRAME_SIZE, small_run


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny", "random", image_size=48).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(5, 1, 48, 48, generator=g)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return small_run(tmp_path_factory)


@pytest.fixture(scope="module")
def store(run):
    cfg = load_run_config(run.run_dir)
    return FrameStore(load_manifest(cfg.manifest, lge_threshold=cfg.lge_threshold), cfg)


# ----------------------------------------------------------------------------------- unit
@pytest.mark.parametrize("method", CAM_METHODS)
def test_cam_shape_range_and_determinism(tiny, batch, method):
    a = compute_cams(tiny, batch, method=method)
    b = compute_cams(tiny, batch, method=method)
    assert a.maps.shape == (5, 48, 48) and a.maps.dtype == np.float32
    assert a.maps.min() >= 0.0 and a.maps.max() <= 1.0
    assert np.array_equal(a.maps, b.maps) and np.array_equal(a.logits, b.logits)
    with torch.no_grad():
        assert np.allclose(a.logits, tiny(batch).numpy(), atol=1e-5)
    assert a.layer == tiny.target_layer_name == "backbone.stages.3"
    assert a.grid == (3, 3)  # stride-16 feature map of a 48 px input
    # non-empty maps reach 1 (pytorch-grad-cam scales each map to its maximum)
    assert all(m.max() == pytest.approx(1.0, abs=1e-4) for m, e in zip(a.maps, a.empty) if not e)


def test_cams_with_gradients_at_the_target_layer_only_equal_the_librarys_own(tiny, batch):
    """compute_cams takes no weight gradients outside the target layer (faster at the seed's sizes): the maps are
    pytorch-grad-cam's own, computed with every weight taking gradients, and the weights are left as they were."""
    from pytorch_grad_cam import GradCAM

    from lgenet.explain.cam import LogitTarget

    a = compute_cams(tiny, batch, signs=[1, -1, 1, 1, -1])
    assert all(p.requires_grad for p in tiny.parameters())
    cam = GradCAM(model=tiny, target_layers=[tiny.get_submodule(tiny.target_layer_name)])
    try:
        ref = cam(input_tensor=batch, targets=[LogitTarget(s) for s in (1, -1, 1, 1, -1)])
    finally:
        cam.activations_and_grads.release()
    assert np.allclose(a.maps, np.clip(ref, 0, 1), atol=1e-6)
    with torch.no_grad():
        assert np.allclose(a.logits, tiny(batch).numpy(), atol=1e-5)


def test_logit_target_handles_both_output_shapes():
    t = LogitTarget(1)
    assert float(t(torch.tensor(2.5))) == 2.5  # one image's output of an (N,) model
    assert float(t(torch.tensor([2.5]))) == 2.5  # one image's output of an (N, 1) model
    assert float(LogitTarget(-1)(torch.tensor(2.5))) == -2.5
    with pytest.raises(ValueError, match="one logit per image"):
        t(torch.tensor([1.0, 2.0]))


def test_predicted_target_explains_the_called_class(tiny, batch):
    res = compute_cams(tiny, batch, target="predicted", threshold=0.5)
    assert np.array_equal(res.signs, np.where(res.logits >= 0, 1, -1))
    pos = compute_cams(tiny, batch, target="positive")
    assert (pos.signs == 1).all()
    neg = compute_cams(tiny, batch, signs=[-1] * 5)
    assert not np.array_equal(neg.maps, pos.maps)


def test_target_layer_by_name(tiny, batch):
    assert resolve_target_layer(tiny)[0] == "backbone.stages.3"
    assert resolve_target_layer(tiny, "stages.2")[0] == "backbone.stages.2"  # backbone-relative names work
    res = compute_cams(tiny, batch, target_layer="backbone.stages.2")
    assert res.layer == "backbone.stages.2" and res.maps.shape == (5, 48, 48)
    with pytest.raises(ConfigError, match="not a module.*stages"):
        resolve_target_layer(tiny, "layer4")
    with pytest.raises(ConfigError, match="CAM method must be one of"):
        compute_cams(tiny, batch, method="scorecam")


def test_ensemble_cam_is_the_mean_of_fold_maps(tiny, batch):
    torch.manual_seed(5)
    other = build_model("tiny", "random", image_size=48).eval()
    ens = ensemble_cams([tiny, other], batch, target="positive")
    a = compute_cams(tiny, batch, target="positive").maps
    b = compute_cams(other, batch, target="positive").maps
    assert np.allclose(ens.maps, (a + b) / 2, atol=1e-6)
    assert ens.maps.min() >= 0 and ens.maps.max() <= 1


def test_cam_to_frame_undoes_padding_and_keeps_orientation():
    # a 40 x 64 frame is padded by 12 rows top and bottom to 64 x 64, then resized to the input size
    cam = np.zeros((32, 32), np.float32)
    cam[6:16, 0:16] = 1.0  # top-left of the *content* (rows 12..32 of the padded 64 grid)
    out = cam_to_frame(cam, (40, 64))
    assert out.shape == (40, 64)
    assert out[:20, :32].mean() > 0.6 and out[20:, :].mean() < 0.1 and out[:, 32:].mean() < 0.1
    frame = np.linspace(0, 1, 40 * 64, dtype=np.float32).reshape(40, 64)
    assert np.array_equal(overlay_rgb(frame, np.zeros_like(frame))[..., 0], (frame * 255 + 0.5).astype(np.uint8))


def test_heart_share_and_sanity_verdicts():
    labels = np.zeros((10, 10), int)
    labels[2:6, 2:6] = 2
    inside = (labels > 0).astype(float)
    assert heart_share(inside, labels) == (1.0, 0.16)
    e, a = heart_share(np.ones((10, 10)), labels)
    assert e == pytest.approx(a)
    assert heart_share(np.zeros((10, 10)), labels) is None
    bad = SanityResult(
        task="lge",
        model="m",
        method="gradcam",
        layer="l",
        heart_labels=[1, 2, 3, 4],
        max_rho=0.5,
        energy_share=[0.1, 0.12],
        area_share=[0.2, 0.2],
        rho=[0.9, 0.8],
    )
    assert bad.passed is False and len(bad.reasons()) == 2
    good = SanityResult(
        task="lge",
        model="m",
        method="gradcam",
        layer="l",
        heart_labels=[1, 2, 3, 4],
        max_rho=0.5,
        energy_share=[0.5],
        area_share=[0.2],
        rho=[0.1],
    )
    assert good.passed is True and good.reasons() == []


def test_sanity_plot_keeps_the_pass_line_label_clear_of_the_points(tmp_path, monkeypatch):
    from lgenet.evaluation import canvas
    from lgenet.explain.sanity import plot_sanity

    figs = []
    real = canvas.save_figure
    monkeypatch.setattr(canvas, "save_figure", lambda fig, path, **kw: (figs.append(fig), real(fig, path, **kw))[1])
    rng = np.random.default_rng(0)
    res = [
        SanityResult(
            task="lge",
            model="m",
            method=m,
            layer="l",
            heart_labels=[1, 2, 3, 4],
            max_rho=0.5,
            rho=list(np.clip(rng.normal(0.5, 0.1, 30), -1, 1)),
        )
        for m in ("gradcam", "hirescam")
    ]
    plot_sanity(res, path=tmp_path / "sanity.png")
    fig = figs[-1]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ax = next(a for a in fig.axes if "trained weights" in a.get_title())
    label = [t for t in ax.texts if "0.5" in t.get_text() and "pass" in t.get_text()]
    assert len(label) == 1
    box, area = label[0].get_window_extent(r), ax.get_window_extent(r)
    # points are clipped to the plotting area; the label lies wholly outside it (right of the line's end),
    # at the line's height, and inside the saved figure
    assert box.x0 >= area.x1
    y_line = ax.transData.transform((0, 0.5))[1]
    assert box.y0 < y_line < box.y1
    assert box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


# ----------------------------------------------------------------------------------- out-of-fold rule
def _training_set(folds: dict[str, int], k: int) -> set[str]:
    return {p for p, f in folds.items() if f != k}


def test_every_cam_comes_from_the_patients_out_of_fold_model(run, store, monkeypatch):
    folds = read_folds(run.run_dir, "lge")
    used: list[tuple[int, list[str]]] = []
    real = oof_mod._cams_for_fold

    def spy(model, fold, patient_ids, x, **kw):
        used.append((model.lgenet_fold, list(patient_ids)))
        return real(model, fold, patient_ids, x, **kw)

    monkeypatch.setattr(oof_mod, "_cams_for_fold", spy)
    cams = oof_cams(run.run_dir, "lge", "tiny/random", store, refresh=True)
    assert not cams.from_cache
    seen = [p for _, pids in used for p in pids]
    assert sorted(seen) == sorted(folds)  # every patient exactly once
    for k, pids in used:
        for p in pids:
            assert p not in _training_set(folds, k), f"{p} explained by fold model {k}, which trained on it"
            assert folds[p] == k
    for i, pid in enumerate(cams.patient_ids):
        assert cams.folds[i] == folds[pid]
    # the explaining model is the one behind the out-of-fold prediction the metrics use
    assert np.allclose(cams.prob, cams.oof_prob, atol=1e-4)


def test_a_model_that_trained_on_the_patient_is_refused(run, store, monkeypatch):
    folds = read_folds(run.run_dir, "lge")
    shifted = {p: (k + 1) % 4 for p, k in folds.items()}  # every patient sent to a model that trained on it
    monkeypatch.setattr(oof_mod, "read_folds", lambda run_dir, task: shifted)
    with pytest.raises(OutOfFoldError, match="was not tested on patient"):
        oof_cams(run.run_dir, "lge", "tiny/random", store, refresh=True)


def test_a_swapped_fold_model_is_refused(run, store, monkeypatch):
    from lgenet.runs.grid import RunDir

    real = RunDir.load_fold_model
    monkeypatch.setattr(
        RunDir, "load_fold_model", lambda self, task, model, fold: real(self, task, model, (fold + 1) % 4)
    )
    with pytest.raises(OutOfFoldError, match="requested from fold model"):
        oof_cams(run.run_dir, "lge", "tiny/random", store, refresh=True)


def test_cam_cache_is_reused_without_computing(run, store, monkeypatch):
    first = oof_cams(run.run_dir, "lge", "tiny/random", store)

    def boom(*a, **k):
        raise AssertionError("CAMs recomputed although the cache is valid")

    monkeypatch.setattr(oof_mod, "_cams_for_fold", boom)
    again = oof_cams(run.run_dir, "lge", "tiny/random", store)
    assert again.from_cache and np.array_equal(again.maps_u8, first.maps_u8)
    assert again.path.parent.relative_to(run.run_dir).as_posix() == "cams/lge/tiny__random"


def test_overlays_at_frame_resolution_named_by_patient_id(run, store):
    cams = oof_cams(run.run_dir, "lge", "tiny/random", store)
    folder = write_overlays(cams, store)
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == sorted(f"{p}.png" for p in read_folds(run.run_dir, "lge"))
    for p in folder.glob("*.png"):
        with Image.open(p) as im:
            assert im.size == (FRAME_SIZE, FRAME_SIZE) and im.mode == "RGB"
            assert not im.info  # no text chunks / metadata
    cases = select_cases(cams, n=2)
    assert set(cases) == {"TP", "FN", "TN", "FP"}
    for cat, cs in cases.items():
        ps = [c.prob for c in cs]
        assert ps == sorted(ps, reverse=cat in ("TP", "FP"))
        for c in cs:
            assert (c.y_true == 1) == (cat in ("TP", "FN")) and (c.prob >= 0.5) == (cat in ("TP", "FP"))


def test_predict_cam_writes_fold_ensemble_overlays(run, tmp_path):
    series = sorted((run.manifest.parent / "dicom").iterdir())[:2]
    preds = predict(run.run_dir, "lge", series, cam_dir=tmp_path / "cams")
    assert [p.cam for p in preds] == [str(tmp_path / "cams" / f"cam_00{i}.png") for i in (1, 2)]
    for p in preds:
        with Image.open(p.cam) as im:
            assert im.size == (FRAME_SIZE, FRAME_SIZE)
    with open(tmp_path / "cams" / "cams.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["prob"]) for r in rows] == pytest.approx([p.prob for p in preds], abs=1e-5)
    # file names never reuse the input's name (DICOM file names can hold UIDs or names)
    assert all(s.name not in p.cam for s in series for p in preds)
