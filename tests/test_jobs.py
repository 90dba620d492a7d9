"""Fit jobs, executors and the run directory's single home (issue: every fit as a job)."""

import csv
import json
import os
import pickle
import subprocess
import sys

import pytest

from lgenet.config import RunConfig
from lgenet.data.synth import make_cohort
from lgenet.runs.grid import ModelKey, RunDir, model_key, parse_model_key
from lgenet.runs.jobs import FitOutcome
from lgenet.training.experiment import ModelPruner, plan_jobs
from lgenet.training.jobs import run_fit_job
from lgenet.workflows.grid import run_experiment


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    d = tmp_path_factory.mktemp("jobs_cohort")
    return make_cohort(
        d / "c", n_patients=12, image_size=40, seed=5, progress=False, lge_fraction_high=0.4, event_rate=0.4
    )


def _cfg(cohort, out, **kw):
    base = dict(
        manifest=str(cohort),
        out=str(out),
        tasks=("lge",),
        archs=("tiny",),
        inits=("random",),
        epochs=2,
        image_size=32,
        folds=2,
        dense_units=8,
        num_threads=1,
    )
    base.update(kw)
    return RunConfig(**base)


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_model_keys_round_trip():
    assert model_key("resnet50", "radimagenet") == "resnet50/radimagenet"
    assert parse_model_key("stack:resnet18/random") == ModelKey("resnet18", "random", "stack")
    assert ModelKey("resnet18", "random", "stack").slug == "stack--resnet18__random"
    assert parse_model_key("tiny/random").slug == "tiny__random"
    with pytest.raises(Exception, match="ARCH/INIT"):
        parse_model_key("resnet50")


def test_process_executor_gives_the_local_executors_predictions(cohort, tmp_path):
    """Same seed, same threads per fit -> identical out-of-fold predictions and metrics, whoever runs the jobs."""
    local = run_experiment(_cfg(cohort, tmp_path / "local", tasks=("lge", "event")), progress=False, report=False)
    pool = run_experiment(
        _cfg(cohort, tmp_path / "pool", tasks=("lge", "event")),
        progress=False,
        report=False,
        executor="process",
        workers=2,
    )
    assert (local.fits_run, pool.fits_run) == (4, 4)
    assert _read(tmp_path / "local" / "oof_predictions.csv") == _read(tmp_path / "pool" / "oof_predictions.csv")
    assert _read(tmp_path / "local" / "metrics.csv") == _read(tmp_path / "pool" / "metrics.csv")
    # each fit records what it ran on
    info = RunDir(tmp_path / "pool").fit_info("lge", "tiny/random", 0)
    assert info["compute"]["threads"] == 1 and info["compute"]["device"] == "cpu"


def test_a_job_is_self_contained_and_picklable(cohort, tmp_path):
    """A pickled job runs in a fresh interpreter from the run directory alone, and a done job is skipped."""
    cfg = _cfg(cohort, tmp_path / "r")
    run_experiment(cfg, progress=False, report=False)
    rd = RunDir(cfg.out)
    precision = rd.fit_info("lge", "tiny/random", 0)["compute"]["precision"]  # what 'auto' resolved to here
    jobs = plan_jobs(cfg, rd.path, ["lge"], threads=1, precision=precision)
    assert len(jobs) == 2 and jobs[0].done()
    before = _read(rd.fit_dir("lge", "tiny/random", 1) / "predictions.csv")
    import shutil

    shutil.rmtree(rd.fit_dir("lge", "tiny/random", 1))
    blob = tmp_path / "job.pkl"
    blob.write_bytes(pickle.dumps(jobs[1]))
    code = (
        "import pickle,sys; from lgenet.training.jobs import run_fit_job; "
        "o = run_fit_job(pickle.load(open(sys.argv[1], 'rb'))); print('skipped' if o.skipped else 'ran')"
    )
    out = subprocess.run([sys.executable, "-c", code, str(blob)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ran"
    assert _read(rd.fit_dir("lge", "tiny/random", 1) / "predictions.csv") == before  # bit-identical refit
    assert run_fit_job(jobs[1]).skipped


def test_pruning_does_not_depend_on_completion_order(cohort, tmp_path):
    """keep_models='best' decides in plan order: the same model.pt files survive whatever order jobs finish in."""
    cfg = _cfg(cohort, tmp_path / "p")
    res = run_experiment(cfg, progress=False, report=False, keep_models="all")
    assert res.fits_run == 2
    rd = RunDir(cfg.out)
    # fake a second model by copying the first model's fits under another key with worse predictions
    import shutil

    for k in range(2):
        src, dst = rd.fit_dir("lge", "tiny/random", k), rd.fit_dir("lge", "tiny/imagenet", k)
        shutil.copytree(src, dst)
        rows = _read(dst / "predictions.csv")
        for r in rows:
            r["prob"] = str(1.0 - float(r["prob"]))  # the reversed scores: AUC 1 - AUC
        with open(dst / "predictions.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    jobs = plan_jobs(cfg, rd.path, ["lge"], models=["tiny/random", "tiny/imagenet"], threads=1)
    survivors = []
    for order in (list(range(4)), [3, 1, 2, 0]):
        for j in jobs:  # restore every model file
            src = rd.model_path("lge", "tiny/random", j.fold)
            dst = rd.model_path(j.task, j.model, j.fold)
            if dst != src and not dst.exists():
                shutil.copy(src, dst)
        pruner = ModelPruner(rd, jobs, 2)
        for i in order:
            pruner.done(FitOutcome(jobs[i]))
        survivors.append(sorted(p.relative_to(rd.path).as_posix() for p in rd.path.rglob("model.pt")))
    assert survivors[0] == survivors[1] and len(survivors[0]) == 2


def test_no_import_cycle_between_training_report_and_explain():
    """The run directory has one home: report/explain/predict never import the training or pipeline layers."""
    code = (
        "import sys, lgenet.report, lgenet.explain, lgenet.workflows.predict, lgenet.runs.grid; "
        "bad = [m for m in ('lgenet.training.experiment', 'lgenet.workflows.grid', 'lgenet.runs.executors') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_fit_json_records_compute_settings_and_refuses_a_mixed_resume(cohort, tmp_path):
    cfg = _cfg(cohort, tmp_path / "t", num_threads=1)
    run_experiment(cfg, progress=False, report=False)
    info = json.loads((RunDir(cfg.out).fit_dir("lge", "tiny/random", 0) / "fit.json").read_text())
    assert info["compute"]["threads"] == 1
    import shutil

    shutil.rmtree(RunDir(cfg.out).fit_dir("lge", "tiny/random", 1))
    from lgenet.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"1 thread\(s\) per fit; this run would use .*2 thread\(s\) per fit.*"
        r"--threads 1",
    ):
        run_experiment(cfg.replace(num_threads=2), progress=False, report=False)
    # the same settings resume
    res = run_experiment(cfg, progress=False, report=False)
    assert (res.fits_run, res.fits_skipped) == (1, 1)


def test_threads_follow_the_load_and_a_resume_keeps_the_recorded_ones(cohort, tmp_path, monkeypatch, caplog):
    import os

    import lgenet.utils as utils_mod
    from lgenet.workflows.grid_prepare import _threads_per_fit

    cfg = _cfg(cohort, tmp_path / "t", num_threads=None)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(utils_mod, "busy_cores", lambda window=0.5: 3.2)
    assert _threads_per_fit(cfg, "process", 1, "cpu") == 1  # one core free
    monkeypatch.setattr(utils_mod, "busy_cores", lambda window=0.5: 0.1)
    assert _threads_per_fit(cfg, "process", 2, "cpu") == 2  # four free cores, two workers
    assert _threads_per_fit(cfg.replace(num_threads=3), "local", 1, "cpu") == 3
    monkeypatch.undo()
    run_experiment(cfg.replace(num_threads=1), progress=False, report=False)
    import shutil

    shutil.rmtree(RunDir(cfg.out).fit_dir("lge", "tiny/random", 1))
    import logging

    with caplog.at_level(logging.WARNING, logger="lgenet"):
        res = run_experiment(cfg, progress=False, report=False)  # no --threads: the recorded count is reused
    assert res.fits_run == 1
    assert RunDir(cfg.out).fit_info("lge", "tiny/random", 1)["compute"]["threads"] == 1


def test_auto_precision_resumes_in_the_precision_the_finished_fits_used(cohort, tmp_path, monkeypatch, caplog):
    """'auto' on a CPU became bf16 (native-bf16 CPUs) on 2026-11-27: older runs must resume in fp32."""
    import logging
    import shutil

    import lgenet.runs.compute as tr
    from lgenet.errors import ConfigError

    cfg = _cfg(cohort, tmp_path / "a")  # precision 'auto'
    monkeypatch.setattr(tr, "cpu_native_bf16", lambda: False)  # the rule before: fp32 on every CPU
    run_experiment(cfg, progress=False, report=False)
    oof = _read(tmp_path / "a" / "oof_predictions.csv")
    rd = RunDir(cfg.out)
    assert rd.fit_info("lge", "tiny/random", 0)["compute"]["precision"] == "fp32"
    shutil.rmtree(rd.fit_dir("lge", "tiny/random", 1))
    monkeypatch.setattr(tr, "cpu_native_bf16", lambda: True)  # 'auto' now means bf16 here
    with caplog.at_level(logging.WARNING, logger="lgenet"):
        again = run_experiment(cfg, progress=False, report=False)
    assert again.fits_run == 1 and "resuming with precision fp32" in caplog.text
    assert rd.fit_info("lge", "tiny/random", 1)["compute"]["precision"] == "fp32"
    assert _read(tmp_path / "a" / "oof_predictions.csv") == oof  # the redone fold in fp32, as it first ran
    shutil.rmtree(rd.fit_dir("lge", "tiny/random", 1))
    with pytest.raises(
        ConfigError, match="precision: 'auto' -> 'bf16'"
    ):  # asked for explicitly: a clash, not a silent choice
        run_experiment(cfg.replace(precision="bf16"), progress=False, report=False)
    fresh = run_experiment(cfg.replace(out=str(tmp_path / "b")), progress=False, report=False)
    assert RunDir(fresh.out_dir).fit_info("lge", "tiny/random", 0)["compute"]["precision"] == "bf16"


def test_process_executor_resumes_without_redoing_finished_fits(cohort, tmp_path):
    import shutil

    cfg = _cfg(cohort, tmp_path / "p")
    first = run_experiment(cfg, progress=False, report=False, executor="process", workers=2)
    oof = _read(tmp_path / "p" / "oof_predictions.csv")
    rd = RunDir(cfg.out)
    kept = rd.fit_dir("lge", "tiny/random", 0) / "fit.json"
    stamp = kept.stat().st_mtime_ns
    shutil.rmtree(rd.fit_dir("lge", "tiny/random", 1))  # as if the worker was killed before writing it
    again = run_experiment(cfg, progress=False, report=False, executor="process", workers=2)
    assert (first.fits_run, again.fits_run, again.fits_skipped) == (2, 1, 1)
    assert kept.stat().st_mtime_ns == stamp
    assert _read(tmp_path / "p" / "oof_predictions.csv") == oof


def test_metrics_reach_the_caller_before_the_outcomes_and_the_report(cohort, tmp_path):
    """Issue 10, item 3: the table is printed when the metrics exist, not after minutes of CAMs."""
    seen = {}

    def on_metrics(res):
        seen["table"] = res.table
        seen["report_existed"] = (res.out_dir / "report.html").exists()
        seen["outcomes_existed"] = (res.out_dir / "outcomes").exists()

    res = run_experiment(_cfg(cohort, tmp_path / "run"), progress=False, on_metrics=on_metrics)
    assert "AUC" in seen["table"] and not seen["report_existed"] and not seen["outcomes_existed"]
    assert (res.out_dir / "report.html").exists()


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="busy_cores reads /proc/stat (Linux)")
def test_busy_cores_sees_a_competing_process_now():
    """The thread policy's input: a CPU-bound process running now counts as (about) one busy core."""
    import time

    from lgenet.utils import busy_cores

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert busy_cores(1.0) >= 0.7
    finally:
        spin.kill()
        spin.wait()


_DRIVER = """
import os, sys, time, multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from lgenet.runs.executors import _worker_init

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(1, os.getpid()))
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 300)
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_process_workers_die_with_a_killed_driver(tmp_path):
    """A driver killed with SIGKILL (no chance to shut its pool down) must not leave workers training on."""
    import signal
    import time

    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        assert _alive(worker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the pool worker outlived its killed driver"
    finally:
        if proc.poll() is None:
            proc.kill()
