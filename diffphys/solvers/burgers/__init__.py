"""Viscous and inviscid Burgers' equation on periodic domains.

- `BurgersSpectral`: pseudo-spectral ETDRK (orders 1–4), 1D and vector 2D/3D.
- `BurgersFV`: conservative MUSCL finite volumes with SSP-RK3, for shocks and ν >= 0.
- `BurgersImplicit`: Crank–Nicolson (θ-scheme), each step a `dp.implicit.root_find`.
- `exact`: Cole–Hopf solutions and the inviscid Riemann problem.
"""

from . import exact as exact
from ._finite_volume import BurgersFV as BurgersFV
from ._implicit import BurgersImplicit as BurgersImplicit
from ._spectral import BurgersSpectral as BurgersSpectral
