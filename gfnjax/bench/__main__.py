import sys

from gfnjax.bench.cli import main

sys.exit(main())
