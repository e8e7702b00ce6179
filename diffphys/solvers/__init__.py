"""Numerical solvers, one subpackage per family: `poisson` (operators and
CG/PCG/DCDM solves), and, as they land, Burgers, the generalized porous medium
equation and rigid-body contact.

Each builds on `diffphys.implicit` for its derivatives.
"""

from . import burgers as burgers, poisson as poisson
from ._rollout import rollout as rollout
from .burgers import (
    BurgersFV as BurgersFV,
    BurgersImplicit as BurgersImplicit,
    BurgersSpectral as BurgersSpectral,
)
