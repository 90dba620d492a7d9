"""The grid on a local Ray cluster of one node vs two nodes: wall time and identical results.

    python bench/ray_scaling.py                        # 1 node vs 2 nodes, one CPU each, + the local executor
    python bench/ray_scaling.py --epochs 4 --patients 40 --arch resnet18

Starts ``ray.cluster_utils.Cluster`` (a head without CPUs plus worker nodes of ``--cpus-per-node`` CPUs
each, all on this machine), runs the same small grid (synthetic cohort, ``--arch`` from random init,
both tasks, 4 folds, one torch thread per fit) with ``--executor ray`` on one node and then on two,
and with the local executor for reference; prints wall times, the speed-up, and whether metrics.csv and
oof_predictions.csv are identical across the three. On a machine with N cores, nodes beyond N CPUs only
share the same cores: a two-node figure needs at least two idle cores. Writes ``<out>/results.md``.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lgenet.config import RunConfig  # noqa: E402
from lgenet.data.synth import make_cohort  # noqa: E402
from lgenet.workflows.grid import run_experiment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _read(p: Path) -> list[dict]:
    with open(p, newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "ray_scaling"))
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--cpus-per-node", type=int, default=1)
    a = ap.parse_args(argv)
    import ray
    from ray.cluster_utils import Cluster

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "cohort" / "manifest.csv"
    if not manifest.exists():
        make_cohort(out / "cohort", n_patients=a.patients, image_size=96, seed=3, progress=False)

    def cfg(name: str) -> RunConfig:
        return RunConfig(
            manifest=str(manifest),
            out=str(out / name),
            tasks=("lge", "event"),
            archs=(a.arch,),
            inits=("random",),
            epochs=a.epochs,
            image_size=a.image_size,
            folds=4,
            num_threads=1,
            outcomes=False,
        )

    import shutil

    times, loads = {}, {}
    for nodes in (1, 2):
        name = f"ray_{nodes}node"
        shutil.rmtree(out / name, ignore_errors=True)
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        for _ in range(nodes):
            c.add_node(num_cpus=a.cpus_per_node)
        c.wait_for_nodes()
        try:
            loads[name] = os.getloadavg()[0]
            t0 = time.perf_counter()
            run_experiment(cfg(name), progress=False, report=False, executor="ray", ray_address=c.address)
            times[name] = time.perf_counter() - t0
        finally:
            ray.shutdown()
            c.shutdown()
    shutil.rmtree(out / "local", ignore_errors=True)
    loads["local"] = os.getloadavg()[0]
    t0 = time.perf_counter()
    run_experiment(cfg("local"), progress=False, report=False)
    times["local"] = time.perf_counter() - t0
    same = all(
        _read(out / n / f) == _read(out / "local" / f)
        for n in ("ray_1node", "ray_2node")
        for f in ("metrics.csv", "oof_predictions.csv")
    )
    n_fits = 2 * 4
    lines = [
        f"Command: `python bench/ray_scaling.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; {a.patients} synthetic patients, {a.arch} "
        f"from random init, {a.image_size} px, {a.epochs} epochs, {n_fits} fits (2 tasks x 4 folds), 1 torch "
        f"thread per fit, {a.cpus_per_node} CPU(s) per node; date {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        "| executor | wall time (s) | load average at start |",
        "|---|---|---|",
    ]
    for n in ("ray_1node", "ray_2node", "local"):
        lines.append(f"| {n} | {times[n]:.1f} | {loads[n]:.2f} |")
    lines += [
        "",
        f"Speed-up, 2 nodes vs 1 node: **{times['ray_1node'] / times['ray_2node']:.2f}x**; metrics.csv and "
        f"oof_predictions.csv identical across the three: **{same}**",
    ]
    text = "\n".join(lines)
    print(text)
    (out / "results.md").write_text(text + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
