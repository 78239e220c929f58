import sys

from skulk.cli import main

sys.exit(main())
