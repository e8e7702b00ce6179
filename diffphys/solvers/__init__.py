"""Numerical solvers, one subpackage per family: `poisson` (operators and
CG/PCG/DCDM solves), `burgers`, `porous_medium` (the generalized porous medium
equation: heat, PME, Stefan) and, as it lands, rigid-body contact;
`ConservationLaw` for 1D hyperbolic laws with inflow/outflow ends.

Each builds on `diffphys.implicit` for its derivatives.
"""

from . import burgers as burgers, poisson as poisson, porous_medium as porous_medium
from ._boundary import (
    Dirichlet as Dirichlet,
    Neumann as Neumann,
    Outflow as Outflow,
    Periodic as Periodic,
)
from ._conservation_law import ConservationLaw as ConservationLaw
from ._rollout import mass_budget as mass_budget, rollout as rollout
from .burgers import (
    BurgersFV as BurgersFV,
    BurgersImplicit as BurgersImplicit,
    BurgersSpectral as BurgersSpectral,
)
from .porous_medium import (
    Constant as Constant,
    Custom as Custom,
    PorousMedium as PorousMedium,
    PowerLaw as PowerLaw,
    Stefan as Stefan,
)
