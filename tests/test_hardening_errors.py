"""Issue 26, defects 2, 8, 9 and the CLI/error part of 11: inputs of another cohort, clear errors instead of
tracebacks, covariates that carry nothing or leak the label by value, and a new user's first-hour errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lgenet.errors import ConfigError, LgenetError


# ----------------------------------------------------------------------------- defect 9: covariates
def _tab_manifest(path: Path, n: int = 40, **extra_cols) -> Path:
    """A manifest without images (the outcomes analysis does not read them) plus columns ``extra_cols``
    (name -> function of (i, lge_percent, event) giving the cell text)."""
    rng = np.random.default_rng(3)
    lge = np.round(rng.gamma(1.2, 6.0, n), 3)
    ev = (rng.random(n) < 0.35).astype(int)
    ev[:4] = 1
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "image", "slice", "lge_percent", "event", "age", "lvef"] + list(extra_cols))
        for i in range(n):
            w.writerow(
                [f"P{i:03d}", f"img/P{i:03d}.png", "basal", lge[i], ev[i], 40 + i % 30, f"{45 + (i * 7) % 20:.1f}"]
                + [f(i, lge[i], ev[i]) for f in extra_cols.values()]
            )
    return path


def _settings(**kw):
    from lgenet.outcomes import OutcomeSettings

    return OutcomeSettings(folds=3, n_bootstrap=100, **kw)


@pytest.mark.parametrize(
    "column, cell, why",
    [
        ("blank", lambda i, lge, ev: "", "no numeric value"),
        ("site", lambda i, lge, ev: "A" if i % 2 else "B", "no numeric value"),
        ("burden_copy", lambda i, lge, ev: f"{lge}", "equals lge_percent"),
        ("burden_sq", lambda i, lge, ev: f"{lge**2 + 3:.6f}", "rank-correlated with lge_percent"),
    ],
)
def test_a_covariate_that_carries_nothing_or_leaks_is_refused(tmp_path, column, cell, why):
    from lgenet.outcomes import run_outcomes

    man = _tab_manifest(tmp_path / "m.csv", **{column: cell})
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=why) as exc:
        run_outcomes(manifest=man, out=out, settings=_settings(covariates=("age", column)), tasks=["lge"])
    assert column in str(exc.value) and "--covariates" in str(exc.value)
    assert not out.exists()  # refused before anything is written


def test_a_copy_of_the_event_is_refused_for_the_event_task(tmp_path):
    from lgenet.outcomes import run_outcomes

    man = _tab_manifest(tmp_path / "m.csv", outcome_copy=lambda i, lge, ev: str(1 - ev))
    with pytest.raises(ConfigError, match="outcome_copy.*the label"):
        run_outcomes(
            manifest=man, out=tmp_path / "o", settings=_settings(covariates=("age", "outcome_copy")), tasks=["event"]
        )


def test_a_blank_default_covariate_is_dropped_with_a_note(tmp_path):
    from lgenet.outcomes import run_outcomes

    man = _tab_manifest(tmp_path / "m.csv", sex=lambda i, lge, ev: "")
    s = run_outcomes(manifest=man, out=tmp_path / "o", settings=_settings(), tasks=["event"], figures=False)
    assert s["tasks"]["event"]["sets"]["covariates"] == ["age", "lvef"]
    assert any("'sex'" in n and "not used" in n for n in s["notes"])
