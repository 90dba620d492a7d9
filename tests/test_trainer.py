import numpy as np
import pytest
import torch

from lgenet.models import build_model
from lgenet.runs.compute import resolve_precision
from lgenet.training.trainer import FitParams, fit, predict_proba


def _easy_data(n=24, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g) * 0.3
    y = np.array([i % 2 for i in range(n)])
    x[y == 1, :, 8:24, 8:24] += 0.6  # positives have a bright square
    return x.clamp(0, 1), y


def test_fit_learns_an_easy_task_and_is_deterministic():
    x, y = _easy_data()
    params = FitParams(epochs=12, batch_size=8, lr=1e-3)

    def run():
        torch.manual_seed(0)
        m = build_model("tiny", image_size=32, dense_units=16)
        res = fit(m, x, y, params, seed=7)
        return m, res

    m1, r1 = run()
    m2, r2 = run()
    assert r1.losses == r2.losses
    p1, p2 = predict_proba(m1, x), predict_proba(m2, x)
    assert np.array_equal(p1, p2)
    assert r1.losses[-1] < r1.losses[0]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p1) > 0.9
    assert ((p1 >= 0) & (p1 <= 1)).all()


def test_predict_uses_eval_mode():
    x, y = _easy_data(n=6)
    m = build_model("tiny", image_size=32, dense_units=8, dropout=0.5)
    a = predict_proba(m, x)
    b = predict_proba(m, x)
    assert np.array_equal(a, b)  # dropout off, BN statistics frozen


def test_precision_auto(monkeypatch):
    import lgenet.runs.compute as tr

    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    monkeypatch.setattr(tr, "cpu_native_bf16", lambda: True)
    assert resolve_precision("auto", torch.device("cpu")) == "bf16"
    monkeypatch.setattr(tr, "cpu_native_bf16", lambda: False)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_bf16_asked_for_on_a_cpu_without_it_is_kept_but_warned(monkeypatch, caplog):
    """An explicit bf16 stays bf16 (a resume must keep its fits' precision), but on a CPU that emulates it the
    user is told that it is slow and what to use instead; not where bf16 is native, nor on CUDA."""
    import logging

    import lgenet.runs.compute as tr

    monkeypatch.setattr(tr, "cpu_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="lgenet"):
        assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
        assert resolve_precision("bf16", torch.device("cuda")) == "bf16"
    assert [
        r.getMessage() for r in caplog.records if "emulated" in r.getMessage() and "--precision auto" in r.getMessage()
    ] and len(caplog.records) == 1
    caplog.clear()
    monkeypatch.setattr(tr, "cpu_native_bf16", lambda: True)
    with caplog.at_level(logging.WARNING, logger="lgenet"):
        resolve_precision("bf16", torch.device("cpu"))
    assert not caplog.records


def test_native_bf16_needs_the_instruction_set_in_cpuinfo():
    from lgenet.runs.compute import cpu_native_bf16

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this torch build's oneDNN has no bf16 on this CPU: every CPU answers no")
    zen4 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
    skylake = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512dq avx512vl\n"
    sapphire = "flags\t\t: avx512f amx_bf16 amx_tile amx_int8\n"
    graviton3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
    assert cpu_native_bf16(zen4) and cpu_native_bf16(sapphire) and cpu_native_bf16(graviton3)
    assert not cpu_native_bf16(skylake)  # AVX512 without BF16: oneDNN would emulate it
    assert not cpu_native_bf16("")


def test_single_image_trailing_batch_is_skipped():
    x, y = _easy_data(n=9)
    m = build_model("tiny", image_size=32, dense_units=8)
    res = fit(m, x, y, FitParams(epochs=1, batch_size=8), seed=0)
    assert len(res.losses) == 1 and np.isfinite(res.losses[0])


def test_bf16_on_cpu_trains():
    x, y = _easy_data(n=16)
    m = build_model("tiny", image_size=32, dense_units=8)
    res = fit(m, x, y, FitParams(epochs=2, batch_size=8, precision="bf16"), seed=0)
    assert all(np.isfinite(res.losses))
    p = predict_proba(m, x, precision="bf16")
    assert p.dtype == np.float64 and ((p >= 0) & (p <= 1)).all()
