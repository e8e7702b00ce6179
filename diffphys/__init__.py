"""diffphys: differentiable physics and PDE solvers in JAX.

Areas: `implicit` (implicit-differentiation layers), `solvers`, `operators`,
`constraints`, `datasets`, `training`, `evaluation`, `cli`; docs/architecture.md
draws their layers and the abstract bases.
"""

import importlib.metadata

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


try:
    __version__ = importlib.metadata.version("diffphys")
except importlib.metadata.PackageNotFoundError:
    # A source tree on sys.path rather than an installed package.
    __version__ = "0+unknown"
