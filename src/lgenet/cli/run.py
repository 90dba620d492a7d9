"""``lgenet run``: the cross-validated grid on a cohort manifest."""

from __future__ import annotations

import argparse

from lgenet.cli.options import add_run_options, config_from_args, run_grid
from lgenet.config import RunConfig
from lgenet.errors import ConfigError
from lgenet.settings import add_options


def cmd_run(a: argparse.Namespace) -> int:

    cfg = config_from_args(a)
    if cfg.manifest is None:
        raise ConfigError("lgenet run: give --manifest cohort.csv (or 'manifest:' in --config)")
    if not a.out:  # the default run folder: said before anything is written (also with -q)
        import sys
        from pathlib import Path

        print(f"lgenet run: no --out given; the run goes into {Path(cfg.out).resolve()}", file=sys.stderr)
    run_grid(cfg, a)
    return 0


def add_run_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="the cross-validated grid on a cohort manifest")
    add_options(p, RunConfig, only=("manifest", "out"))
    add_run_options(p)
    p.set_defaults(func=cmd_run)
    return p
