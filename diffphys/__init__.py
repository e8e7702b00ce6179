"""diffphys: differentiable physics and PDE solvers in JAX.

Areas: `implicit` (implicit-differentiation layers, through which the implicit
solvers are differentiated; the explicit steppers backprop, optionally
checkpointed), `solvers`, `operators`, `constraints`, `datasets`, `training`,
`evaluation`, `cli`; docs/architecture.md draws their layers and the abstract bases.

The areas load on first use (`dp.solvers` imports JAX then), so `import diffphys`
and `diffphys --help` stay instant.
"""

import importlib
import importlib.metadata
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from . import (
        constraints as constraints,
        datasets as datasets,
        evaluation as evaluation,
        implicit as implicit,
        operators as operators,
        solvers as solvers,
        training as training,
    )
    from ._solution import RESULTS as RESULTS, Solution as Solution

_AREAS = (
    "constraints",
    "datasets",
    "evaluation",
    "implicit",
    "operators",
    "solvers",
    "training",
)
_FROM_SOLUTION = ("RESULTS", "Solution")


def __getattr__(name: str):
    if name in _AREAS:
        return importlib.import_module(f".{name}", __name__)
    if name in _FROM_SOLUTION:
        return getattr(importlib.import_module("._solution", __name__), name)
    raise AttributeError(f"module 'diffphys' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_AREAS, *_FROM_SOLUTION])


try:
    __version__ = importlib.metadata.version("diffphys")
except importlib.metadata.PackageNotFoundError:
    # A source tree on sys.path rather than an installed package.
    __version__ = "0+unknown"
