"""Initial-condition generators, and (to come) the PDE scenario registry, sharded
generation and The Well-format HDF5 reading and writing.

Use it as `dp.datasets`; this package is nested on purpose, so it never shadows the
HuggingFace `datasets` package.
"""

from ._initial_conditions import (
    AbstractInitialCondition as AbstractInitialCondition,
    FromCallable as FromCallable,
    GaussianRandomField as GaussianRandomField,
    PiecewiseConstant as PiecewiseConstant,
    RandomTruncatedFourier as RandomTruncatedFourier,
    SineSum as SineSum,
)
