import sys

from gs.cli import main

sys.exit(main())
