import sys

from gfnjax.bench.cli import entry

sys.exit(entry())
