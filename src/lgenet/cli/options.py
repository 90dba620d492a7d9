"""What the grid commands (``lgenet run``, ``lgenet demo``) share: their protocol options, the config they
build from the options and a --config file, and how they print a finished run."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from lgenet.config import RunConfig, load_config
from lgenet.errors import ConfigError
from lgenet.settings import OptionHelp, add_options, read_yaml_mapping, values_from_args
from lgenet.workflows.demo import DEMO_RUN

__all__ = [
    "add_run_options",
    "config_from_args",
    "parse_weights_args",
    "exec_args",
    "print_table",
    "print_result",
    "run_grid",
    "csv_list",
    "int_list",
    "float_list",
]


def int_list(text: str) -> tuple[int, ...]:
    """``--opt 1,2,3``: comma-separated integers."""
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def float_list(text: str) -> tuple[float, ...]:
    """``--opt 0.5,1``: comma-separated numbers."""
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def csv_list(text: str) -> tuple[str, ...]:
    """A comma-separated option value; one with no value in it (``--task ,``) is refused, not read as "all"."""
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} holds no value; give one or more, comma-separated")
    return values


def parse_weights_args(specs: Sequence[str] | None, archs: Sequence[str], inits: Sequence[str]) -> dict:
    """Turn ``--weights-file`` values into ``{arch: {init: path}}``.

    Forms: ``PATH`` (only when the run has one architecture and one pretrained init),
    ``ARCH=PATH`` (the run's one pretrained init), ``ARCH:INIT=PATH`` (explicit).
    """
    out: dict[str, dict[str, str]] = {}
    pretrained = [i for i in inits if i != "random"]
    for spec in specs or []:
        if "=" in spec and not Path(spec).exists():
            left, path = spec.split("=", 1)
            if ":" in left:
                arch, init = left.split(":", 1)
            else:
                arch = left
                if len(pretrained) != 1:
                    raise ConfigError(
                        f"--weights-file {spec!r}: the run has inits {list(inits)}; say which one the file is for "
                        f"with ARCH:INIT=PATH, e.g. {arch}:radimagenet={path}"
                    )
                init = pretrained[0]
        else:
            path = spec
            if len(archs) != 1 or len(pretrained) != 1:
                raise ConfigError(
                    f"--weights-file {spec!r}: with archs {list(archs)} and inits {list(inits)} a bare path is "
                    "ambiguous; use ARCH:INIT=PATH (e.g. resnet50:radimagenet=RadImageNet-ResNet50_notop.h5), "
                    "once per file"
                )
            arch, init = archs[0], pretrained[0]
        if arch not in archs:
            raise ConfigError(
                f"--weights-file {spec!r}: architecture {arch!r} is not in this run's archs {list(archs)}"
            )
        if init not in ("imagenet", "radimagenet"):
            raise ConfigError(f"--weights-file {spec!r}: init must be 'imagenet' or 'radimagenet', got {init!r}")
        out.setdefault(arch, {})[init] = path
    return out


#: what ``lgenet demo`` changes from the seed protocol (see :mod:`lgenet.workflows.demo`)
DEMO_DEFAULTS = DEMO_RUN
#: the settings the command adds itself (``lgenet run``: --manifest, --out; the demo sets them), or not at all
#: (--weights-file: the weights mapping)
_OWN = ("manifest", "out")


def add_run_options(p: argparse.ArgumentParser, *, demo: bool = False) -> None:
    """The protocol group: every RunConfig setting with a flag (help and default from its declaration; under
    ``lgenet demo`` the demo's own defaults, :data:`DEMO_DEFAULTS`), then how the fits are run."""
    title = (
        "protocol (defaults: the demo's own where marked 'demo default', else the seed study's)"
        if demo
        else "protocol (defaults: the seed study)"
    )
    g = p.add_argument_group(title)
    g.add_argument("--config", help="YAML file of RunConfig parameters (command-line options override it)")
    add_options(
        g,
        RunConfig,
        exclude=_OWN,
        wording=OptionHelp(
            shown=DEMO_DEFAULTS if demo else None,
            shown_word="demo default",
            notes={
                "segmentation_run": "demo default: trained on the synthetic cohort into DIR/seg, see "
                "lgenet.workflows.demo"
            }
            if demo
            else None,
            more={"seed": " (and of the synthetic cohort)"} if demo else None,
        ),
    )
    g.add_argument(
        "--weights-file",
        action="append",
        metavar="[ARCH[:INIT]=]PATH",
        help="local pretrained weights; repeat for several (see docs)",
    )
    g.add_argument(
        "--executor",
        choices=["local", "process", "ray"],
        default="process" if demo else "local",
        help="who runs the fits: one after another in this process (local), --workers at a "
        "time in worker processes (process), or as Ray tasks on a local Ray or the cluster at "
        "--ray-address (ray; pip install 'lgenet[ray]'; across machines the run directory and "
        "images must be on a shared file system) " + ("(demo default: process)" if demo else "(default: local)"),
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None if demo else 1,
        help="fits at a time with --executor process "
        + (
            "(demo default: 2 on a machine with 2 or more cores, each fit with one torch thread)"
            if demo
            else "(default 1)"
        ),
    )
    g.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --executor ray: the cluster to join, e.g. 10.0.0.5:6379 (default: $RAY_ADDRESS, "
        "else a local Ray started for this run)",
    )
    g.add_argument(
        "--fits-per-gpu",
        type=int,
        default=1,
        help="with --executor ray on CUDA: fits sharing one GPU, each asking 1/N of it (default 1)",
    )
    g.add_argument(
        "--keep-models",
        choices=["best", "all", "none"],
        default="none" if demo else "best",
        help="fold models kept on disk: each task's best model's (best), every model's (all) or none once "
        "the report is written (none) "
        + ("(demo default: none, to keep the demo small; `lgenet run` keeps the best)" if demo else "(default: best)"),
    )
    g.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="skip report.html at the end (write it later with `lgenet report RUN_DIR`)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _yaml_keys(path: str | None) -> set[str]:
    """The parameters a --config file sets (an unreadable file is left to load_config's clear error)."""
    if not path:
        return set()
    try:
        return set(read_yaml_mapping(path))
    except ConfigError:
        return set()


def config_from_args(a: argparse.Namespace, **defaults):
    """The RunConfig of a grid command: a --config file, the options given, and ``defaults`` (a command's own, the
    demo's) for what neither sets."""
    over = values_from_args(a, RunConfig, exclude=_OWN)
    in_yaml = _yaml_keys(a.config)
    for k, v in defaults.items():  # a command's own defaults (the demo's) yield to the command line and the YAML
        if over.get(k) is None and k not in in_yaml:
            over[k] = v
    over["manifest"] = getattr(a, "manifest", None) or defaults.get("manifest")
    over["out"] = getattr(a, "out", None) or defaults.get("out")
    cfg = load_config(a.config, **over)
    if a.weights_file:
        cfg = cfg.replace(weights=parse_weights_args(a.weights_file, cfg.archs, cfg.inits))
    return cfg


def run_grid(cfg, a: argparse.Namespace):
    """``run_experiment`` with the grid options of ``a`` (`lgenet run`, `lgenet demo`); prints the result."""
    from lgenet.workflows.grid import run_experiment

    res = run_experiment(
        cfg,
        progress=not a.quiet,
        keep_models=a.keep_models,
        report=a.report,
        on_metrics=print_table,
        fits_per_gpu=a.fits_per_gpu,
        **exec_args(a),
    )
    print_result(res)
    return res


def print_table(res) -> None:
    """The metrics table, printed as soon as it exists (the outcomes and the report come after)."""
    print()
    print(res.table, flush=True)
    print()
    res.table_printed = True


def print_result(res) -> None:
    if not getattr(res, "table_printed", False):
        print_table(res)
    print(f"run directory : {res.out_dir}")
    print(f"metrics       : {res.out_dir / 'metrics.csv'} (and metrics.json)")
    print(f"predictions   : {res.out_dir / 'oof_predictions.csv'}")
    for f in res.figures:
        print(f"figure        : {f}")
    report = res.out_dir / "report.html"
    if report.exists():
        print(f"report        : {report}")
    print(f"fits run: {res.fits_run}, resumed (already done): {res.fits_skipped}")


def exec_args(a: argparse.Namespace) -> dict:
    import os

    workers = a.workers if a.workers is not None else min(2, os.cpu_count() or 1)  # (the demo's default)
    return dict(executor=a.executor, workers=workers, ray_address=a.ray_address)
