"""Steady Darcy flow `-∇·(a ∇u) = f` on a square with `u = 0` on its boundary (the
FNO paper's steady benchmark), solved by `dp.implicit.linear_solve`; `exact` holds a
manufactured solution."""

from . import exact as exact
from ._darcy import Darcy as Darcy
