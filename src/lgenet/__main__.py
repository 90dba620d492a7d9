import sys

from lgenet.cli import main

sys.exit(main())
