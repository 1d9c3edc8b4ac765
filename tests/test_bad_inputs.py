"""Every bad input of tests/bad_inputs.py (the table in docs/bad_inputs.md) is refused with its
message and exit status 2 before anything is compiled (compilation is forbidden here); the cases
that need a compilation or training are run only by the table generator."""

from __future__ import annotations

import importlib

import pytest
from bad_inputs import CASES, run_case

run_mod = importlib.import_module("gfnjax.bench.run")
REFUSED = [c for c in CASES if c.rc == 2 and not c.compiles and not c.run]


def test_enough_cases():
    assert len(CASES) >= 60 and len(REFUSED) >= 60


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_before_compiling(case, tmp_path, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError(f"{case.id}: compilation started despite invalid input")

    monkeypatch.setattr(run_mod, "_batched", forbidden)
    rc, text = run_case(case, str(tmp_path))
    assert (rc, case.expect in text) == (2, True), text[-2000:]
