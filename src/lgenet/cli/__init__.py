"""The command line: ``lgenet COMMAND``, a thin layer of argument handling over the library.

One module per command (``run``, ``demo``, ``predict``, ``segment``, ``import``/``quantify``
(:mod:`~lgenet.cli.imports`), ``outcomes``, ``report``, ``weights``, ``synth``, ``backbones``);
:mod:`lgenet.cli.options` holds what the grid commands share and :mod:`lgenet.cli.main` builds the
parser and turns every :class:`lgenet.errors.LgenetError` into one line on stderr and exit status 2.
"""

from lgenet.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
