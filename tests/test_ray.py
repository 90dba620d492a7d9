"""The Ray executor (optional extra ``[ray]``) on a local two-node Ray cluster.

Every fit is a Ray task; the metrics and out-of-fold predictions must equal the local executor's
(same seeds, one thread per fit), the fits must spread over both nodes, a node that dies mid-grid must
cost nothing but its tasks' retries, and a driver killed with SIGKILL must resume from the run directory.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed (pip install 'lgenet[ray]')")

from lgenet.config import RunConfig  # noqa: E402
from lgenet.data.synth import make_cohort  # noqa: E402
from lgenet.workflows.grid import run_experiment  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray_cohort")
    return make_cohort(
        d / "c", n_patients=12, image_size=40, seed=5, progress=False, lge_fraction_high=0.4, event_rate=0.4
    )


@pytest.fixture(scope="module")
def cluster():
    """A head without CPUs (it schedules nothing) and two one-CPU worker nodes, on this machine."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


def _cfg(cohort, out, **kw):
    base = dict(
        manifest=str(cohort),
        out=str(out),
        tasks=("lge", "event"),
        archs=("tiny",),
        inits=("random",),
        epochs=3,
        image_size=32,
        folds=3,
        dense_units=8,
        num_threads=1,
        outcomes=False,
    )
    base.update(kw)
    return RunConfig(**base)


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _same_results(a: Path, b: Path) -> None:
    assert _read(a / "oof_predictions.csv") == _read(b / "oof_predictions.csv")
    assert _read(a / "metrics.csv") == _read(b / "metrics.csv")


@pytest.fixture(scope="module")
def local_run(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_local") / "run"
    run_experiment(_cfg(cohort, out), progress=False, report=False)
    return out


@pytest.fixture(scope="module")
def slow_local_run(cohort, tmp_path_factory):
    """Fits long enough (a few seconds each) to be interrupted mid-fit."""
    out = tmp_path_factory.mktemp("ray_local_slow") / "run"
    run_experiment(_cfg(cohort, out, epochs=25), progress=False, report=False)
    return out


def test_ray_executor_spreads_fits_over_nodes_and_matches_the_local_executor(cohort, cluster, local_run, tmp_path):
    out = tmp_path / "ray"
    res = run_experiment(_cfg(cohort, out), progress=False, report=False, executor="ray", ray_address=cluster.address)
    assert res.fits_run == 6
    _same_results(local_run, out)
    nodes = {
        line.split("ray node ", 1)[1].split(" ", 1)[0]
        for line in (out / "run.log").read_text().splitlines()
        if "ray node " in line
    }
    assert len(nodes) == 2, nodes  # both worker nodes ran fits (the head offers no CPU)
    # a rerun resumes: nothing is refitted
    again = run_experiment(_cfg(cohort, out), progress=False, report=False, executor="ray", ray_address=cluster.address)
    assert (again.fits_run, again.fits_skipped) == (0, 6)


def test_a_node_killed_mid_grid_costs_only_retries(cohort, cluster, slow_local_run, tmp_path):
    out = tmp_path / "ray_kill"
    victim = cluster.add_node(num_cpus=1)  # a third node, removed while it runs a fit
    cluster.wait_for_nodes()
    result, error = {}, []

    def drive():
        try:
            result["res"] = run_experiment(
                _cfg(cohort, out, epochs=25), progress=False, report=False, executor="ray", ray_address=cluster.address
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            error.append(exc)

    t = threading.Thread(target=drive)
    t.start()
    deadline = time.time() + 900  # left as soon as a fit is written; long only on a loaded machine
    while time.time() < deadline and not list((out / "fits").rglob("fit.json")):
        time.sleep(0.2)  # the first fit finished: every node is busy with a fit now
    cluster.remove_node(victim, allow_graceful=False)
    done_at_kill = len(list((out / "fits").rglob("fit.json")))
    t.join(timeout=600)
    assert 1 <= done_at_kill < 6  # the node died mid-grid (each of the three nodes was running a fit)
    assert not t.is_alive() and not error, error
    assert result["res"].fits_run + result["res"].fits_skipped == 6
    _same_results(slow_local_run, out)


def test_a_driver_killed_with_sigkill_resumes(cohort, cluster, slow_local_run, tmp_path):
    out = tmp_path / "ray_driver"
    cmd = [
        sys.executable,
        "-m",
        "lgenet.cli",
        "run",
        "--manifest",
        str(cohort),
        "--out",
        str(out),
        "--tasks",
        "lge,event",
        "--archs",
        "tiny",
        "--inits",
        "random",
        "--epochs",
        "25",
        "--image-size",
        "32",
        "--folds",
        "3",
        "--threads",
        "1",
        "--no-outcomes",
        "--no-report",
        "--executor",
        "ray",
        "--ray-address",
        cluster.address,
        "-q",
    ]
    cfg_yaml = tmp_path / "c.yaml"
    cfg_yaml.write_text("dense_units: 8\n")
    proc = subprocess.Popen(
        cmd + ["--config", str(cfg_yaml)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.time() + 900  # left as soon as a fit is written; long only on a loaded machine
    while time.time() < deadline and not list((out / "fits").rglob("fit.json")) and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "fits").rglob("fit.json")))
    assert 1 <= done_before < 6, f"{done_before} fits were finished when the driver was killed"
    res = run_experiment(
        _cfg(cohort, out, epochs=25), progress=False, report=False, executor="ray", ray_address=cluster.address
    )
    assert res.fits_skipped >= done_before and res.fits_run + res.fits_skipped == 6
    _same_results(slow_local_run, out)


def test_ray_missing_or_unreachable_is_a_clear_error(cohort, tmp_path, monkeypatch):
    from lgenet.errors import ConfigError
    from lgenet.runs.executors import RayExecutor

    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(ConfigError, match="no Ray cluster answers there"):
        RayExecutor(address="127.0.0.1:1")._ray()
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'lgenet\[ray\]'"):
        RayExecutor()._ray()
