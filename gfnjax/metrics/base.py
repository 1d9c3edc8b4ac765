"""The metric protocol: everything stays on device inside the jitted training loop.

init() -> carry                              (pytree, lives in the loop state)
update(carry, info: StepInfo) -> carry       (every training iteration)
compute(carry, algo, state, key) -> dict     (every evaluation; float32[] scalars)
"""

from __future__ import annotations

from typing import Any

import jax


class Metric:
    """Base of every metric: no carry and no per-iteration update unless overridden."""

    def init(self) -> Any:
        return ()

    def update(self, carry: Any, info: Any) -> Any:
        return carry

    def compute(self, carry: Any, algo: Any, state: Any, key: jax.Array) -> dict[str, jax.Array]:
        raise NotImplementedError
