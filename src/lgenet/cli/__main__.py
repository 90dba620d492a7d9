"""``python -m lgenet.cli`` (as ``python -m lgenet`` and the ``lgenet`` command)."""

import sys

from lgenet.cli.main import main

sys.exit(main())
