"""``lgenet``: the parser of every command (one module each in :mod:`lgenet.cli`) and the error handling:
every user error is printed as one clear message (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from lgenet import __version__
from lgenet.errors import LgenetError

__all__ = ["main", "build_parser"]

log = logging.getLogger("lgenet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lgenet",
        description="Deep learning on LGE cardiac MRI: the Azoulay et al. protocol and beyond.",
    )
    parser.add_argument("--version", action="version", version=f"lgenet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages to the terminal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from lgenet.cli.backbones import add_backbones_parser
    from lgenet.cli.demo import add_demo_parser
    from lgenet.cli.imports import add_import_parser, add_quantify_parser
    from lgenet.cli.model import add_model_parser
    from lgenet.cli.outcomes import add_outcomes_parser
    from lgenet.cli.predict import add_predict_parser
    from lgenet.cli.report import add_report_parser
    from lgenet.cli.run import add_run_parser
    from lgenet.cli.segment import add_segment_parser
    from lgenet.cli.synth import add_synth_parser
    from lgenet.cli.view import add_view_parser
    from lgenet.cli.weights import add_weights_parser

    for add in (
        add_backbones_parser,
        add_synth_parser,
        add_demo_parser,
        add_run_parser,
        add_predict_parser,
        add_weights_parser,
        add_import_parser,
        add_quantify_parser,
        add_segment_parser,
        add_report_parser,
        add_outcomes_parser,
        add_view_parser,
        add_model_parser,
    ):
        add(sub)
    return parser


def error_line(command: str, message: str) -> str:
    """One error line, ``lgenet CMD: error: ...``; a message that names its own (sub)command keeps that name once."""
    own = re.match(r"(lgenet [a-z][a-z -]*?): (.*)", message, flags=re.S)
    if own:
        return f"{own[1]}: error: {own[2]}"
    return f"lgenet {command}: error: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return args.func(args)
    except LgenetError as exc:
        print(error_line(args.command, str(exc)), file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused: say which file and why, in one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lgenet {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume finished fits", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
