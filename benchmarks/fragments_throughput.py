"""Throughput of the `fragments` environment: `benchmarks/molgraph_throughput.py --env fragments`.

    .venv/bin/python benchmarks/fragments_throughput.py --algos tb,ppo --iterations 100

Results: benchmarks/fragments.md (rewritten), benchmarks/fragments_top.png and
benchmarks/results/fragments.jsonl (appended); see molgraph_throughput.py for what is timed.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from molgraph_throughput import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(env_name="fragments"))
