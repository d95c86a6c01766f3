import sys

from bionp.cli import main

sys.exit(main())
