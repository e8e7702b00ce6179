"""Numerical solvers, one subpackage per family: `poisson` (operators and
CG/PCG/DCDM solves), and, as they land, Burgers, the generalized porous medium
equation and rigid-body contact.

Each builds on `diffphys.implicit` for its derivatives.
"""

from . import poisson as poisson
