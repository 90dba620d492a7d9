"""lgenet against the seed's Keras/TensorFlow stack, back to back, and a small grid per executor.

    python bench/grid_speed.py                       # 224/299 and 128 px, then the small grid (~15 min on 2 cores)
    python bench/grid_speed.py --quick               # 128 px only, smaller grid

1. Training throughput, one configuration after another in child processes of this one (same machine,
   same pass, the same thread count for both stacks): ``bench/keras_reference.py`` (the seed's model in
   Keras: ``keras.applications`` backbone, all layers trainable, Flatten -> Dense 512 ReLU -> Dropout 0.5
   -> sigmoid, Adam 1e-3, batch 8) and lgenet's own ``fit`` (``bench/throughput.py``'s ``bench_one``:
   the same head, Adam fused, channels_last) in fp32 and in bf16 autocast, on random images of the same
   size. Prints images/s and the ratio lgenet / Keras for each.
3. ``--threads-study``: at the seed's sizes, the same small grid of real-size fits (synthetic cohort,
   task lge, 4 folds) run as one two-thread fit after another (``local``, 2 threads) and as two
   single-thread fits side by side (``process``, 2 workers x 1 thread), interleaved rounds: which of the
   two should be the CPU default (issue 12, part 4).
2. The wall time of one small complete grid (synthetic cohort, ResNet-18 from random init, both tasks,
   4 folds, one torch thread per fit) with each executor: ``local``, ``process`` (2 workers) and ``ray``
   (a local Ray; skipped without the ``[ray]`` extra); the three must give identical metrics.

Needs the ``[interop]`` extra for the Keras part. Writes ``<out>/results.md`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent

_LGENET = """
import json, sys
sys.path.insert(0, {bench!r}); sys.path.insert(0, {src!r})
import torch
torch.set_num_threads({threads})
from throughput import bench_one
print(json.dumps(bench_one({arch!r}, {size}, {precision!r}, {n}, {repeats})))
"""


def _child(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(configs, threads: int, n: int, repeats: int, rounds: int) -> list[dict]:
    """Keras, lgenet fp32 and lgenet bf16 in turn, ``rounds`` times per configuration (interleaved, because
    this host's speed swings up to 2x between minutes); each stack's figure is the median over the rounds."""
    import statistics

    rows = []
    for arch, size in configs:
        load = os.getloadavg()[0]
        got: dict[str, list[float]] = {"keras": [], "fp32": [], "bf16": []}
        stack = ""
        for _ in range(rounds):
            k = _child(
                [
                    sys.executable,
                    str(BENCH / "keras_reference.py"),
                    "--arch",
                    arch,
                    "--size",
                    str(size),
                    "--n",
                    str(n),
                    "--repeats",
                    str(repeats),
                    "--threads",
                    str(threads),
                ]
            )
            got["keras"].append(k["train_img_s"])
            stack = k["stack"]
            for precision in ("fp32", "bf16"):
                code = _LGENET.format(
                    bench=str(BENCH),
                    src=str(REPO / "src"),
                    threads=threads,
                    arch=arch,
                    size=size,
                    precision=precision,
                    n=n,
                    repeats=repeats,
                )
                got[precision].append(_child([sys.executable, "-c", code])["train_img_s"])
        med = {k: statistics.median(v) for k, v in got.items()}
        row = {
            "arch": arch,
            "size": size,
            "keras_img_s": round(med["keras"], 2),
            "keras": stack,
            "load": round(load, 2),
            "runs": got,
        }
        for precision in ("fp32", "bf16"):
            row[f"lgenet_{precision}_img_s"] = round(med[precision], 2)
            row[f"ratio_{precision}"] = round(med[precision] / med["keras"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def grid(out: Path, patients: int, epochs: int) -> list[dict]:
    sys.path.insert(0, str(REPO / "src"))
    from lgenet.config import RunConfig
    from lgenet.data.synth import make_cohort
    from lgenet.workflows.grid import run_experiment

    manifest = out / "cohort" / "manifest.csv"
    if not manifest.exists():
        make_cohort(out / "cohort", n_patients=patients, image_size=96, seed=3, progress=False)
    rows, ref = [], None
    execs = [("local", 1), ("process", 2)]
    try:
        import ray  # noqa: F401

        execs.append(("ray", 1))
    except ImportError:
        print("ray is not installed: the ray executor is skipped (pip install 'lgenet[ray]')")
    import shutil

    for name, workers in execs:
        d = out / f"grid_{name}"
        shutil.rmtree(d, ignore_errors=True)
        cfg = RunConfig(
            manifest=str(manifest),
            out=str(d),
            tasks=("lge", "event"),
            archs=("resnet18",),
            inits=("random",),
            epochs=epochs,
            image_size=96,
            folds=4,
            num_threads=1,
            outcomes=False,
        )
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        run_experiment(cfg, progress=False, report=False, executor=name, workers=workers)
        wall = time.perf_counter() - t0
        with open(d / "oof_predictions.csv", newline="") as fh:
            oof = list(csv.DictReader(fh))
        ref = oof if ref is None else ref
        rows.append(
            {
                "executor": name,
                "workers": workers,
                "wall_s": round(wall, 1),
                "load": round(load, 2),
                "same_oof_as_local": oof == ref,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except ImportError:
        pass
    return rows


def threads_study(out: Path, configs, rounds: int, patients: int, epochs: int) -> list[dict]:
    """Wall time of one grid per (arch, size): local x 2 threads against process 2 workers x 1 thread."""
    import shutil

    sys.path.insert(0, str(REPO / "src"))
    from lgenet.config import RunConfig
    from lgenet.data.synth import make_cohort
    from lgenet.workflows.grid import run_experiment

    rows = []
    for arch, size in configs:
        manifest = out / f"cohort{size}" / "manifest.csv"
        if not manifest.exists():
            make_cohort(out / f"cohort{size}", n_patients=patients, image_size=size, seed=4, progress=False)
        for rnd in range(rounds):
            for name, workers, threads in (("local", 1, 2), ("process", 2, 1)):
                d = out / f"threads_{arch}_{size}_{name}"
                shutil.rmtree(d, ignore_errors=True)
                cfg = RunConfig(
                    manifest=str(manifest),
                    out=str(d),
                    tasks=("lge",),
                    archs=(arch,),
                    inits=("random",),
                    epochs=epochs,
                    image_size=size,
                    folds=4,
                    num_threads=threads,
                    outcomes=False,
                )
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                run_experiment(cfg, progress=False, report=False, keep_models="none", executor=name, workers=workers)
                wall = time.perf_counter() - t0
                fits = [json.loads(f.read_text()) for f in d.glob("fits/*/*/fold*/fit.json")]
                n_img = sum(int(f.get("n_train_patients", 0)) for f in fits) * epochs
                rows.append(
                    {
                        "arch": arch,
                        "size": size,
                        "round": rnd + 1,
                        "executor": name,
                        "workers": workers,
                        "threads": threads,
                        "wall_s": round(wall, 1),
                        "train_images": n_img,
                        "grid_img_s": round(n_img / wall, 2) if n_img else None,
                        "load": round(load, 2),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "grid_speed"))
    ap.add_argument("--quick", action="store_true", help="128 px only; a 2-epoch grid")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of both stacks (default: cores)")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per configuration (default 2)")
    ap.add_argument("--configs", help="e.g. resnet50:224,resnet50:128 (default: the seed sizes and 128 px)")
    ap.add_argument("--no-grid", action="store_true", help="throughput only")
    ap.add_argument(
        "--threads-study",
        action="store_true",
        help="only: local x 2 threads vs process 2 x 1 thread at --configs (default the seed sizes)",
    )
    ap.add_argument("--study-patients", type=int, default=32)
    ap.add_argument("--study-epochs", type=int, default=2)
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = [("resnet50", 128), ("inception_v3", 128)]
    if not a.quick:
        configs = [("resnet50", 224), ("inception_v3", 299)] + configs
    if a.configs:
        configs = [(c.split(":")[0], int(c.split(":")[1])) for c in a.configs.split(",")]
    t0 = time.time()
    if a.threads_study:
        rows = threads_study(
            out,
            configs if a.configs else [("resnet50", 224), ("inception_v3", 299)],
            a.rounds,
            a.study_patients,
            a.study_epochs,
        )
        md = [
            f"Command: `python bench/grid_speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; date {time.strftime('%Y-%m-%d %H:%M %Z')}; "
            f"wall time {time.time() - t0:.0f} s",
            "",
            f"One grid ({a.study_patients} synthetic patients, task lge, 4 folds, {a.study_epochs} epochs, fp32, batch 8):",
            "",
            "| backbone | px | round | executor | workers x threads | wall (s) | grid training img/s | load at start |",
            "|---|---|---|---|---|---|---|---|",
        ]
        md += [
            f"| {r['arch']} | {r['size']} | {r['round']} | {r['executor']} | {r['workers']} x {r['threads']} | "
            f"{r['wall_s']} | {r['grid_img_s']} | {r['load']} |"
            for r in rows
        ]
        text = "\n".join(md)
        print(text)
        (out / "threads_study.md").write_text(text + "\n")
        (out / "threads_study.json").write_text(json.dumps(rows, indent=1))
        return 0
    tp = throughput(configs, a.threads, a.n, a.repeats, a.rounds)
    gr = [] if a.no_grid else grid(out, 40, 2 if a.quick else 6)
    md = [
        f"Command: `python bench/grid_speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; {a.threads} threads for both stacks; "
        f"date {time.strftime('%Y-%m-%d %H:%M %Z')}; wall time {time.time() - t0:.0f} s",
        "",
        f"Training throughput (images/s, batch 8, seed head; per stack the median over {a.rounds} interleaved "
        "rounds, each the median of its timed epochs):",
        "",
        "| backbone | px | Keras/TF fp32 | lgenet fp32 | ratio | lgenet bf16 | ratio | load at start |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in tp:
        md.append(
            f"| {r['arch']} | {r['size']} | {r['keras_img_s']} | {r['lgenet_fp32_img_s']} | {r['ratio_fp32']} | "
            f"{r['lgenet_bf16_img_s']} | {r['ratio_bf16']} | {r['load']} |"
        )
    md += ["", "Every round: " + "; ".join(f"{r['arch']}@{r['size']} {r['runs']}" for r in tp)]
    md += [
        "",
        f"({tp[0]['keras']}.) Small grid (40 synthetic patients, ResNet-18 from random init, 96 px, "
        "2 tasks x 4 folds, 1 thread per fit):",
        "",
        "| executor | workers | wall (s) | identical OOF | load at start |",
        "|---|---|---|---|---|",
    ]
    for r in gr:
        md.append(f"| {r['executor']} | {r['workers']} | {r['wall_s']} | {r['same_oof_as_local']} | {r['load']} |")
    text = "\n".join(md)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"throughput": tp, "grid": gr}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
