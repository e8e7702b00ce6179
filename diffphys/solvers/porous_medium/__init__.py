"""The generalized porous medium equation `u_t = ∇·(k(u) ∇u)` (heat, porous medium,
Stefan) and the hyperbolic ProbConserv instances.

- `PorousMedium`: conservative finite volumes, implicit θ-scheme, Newton steps
    through `dp.implicit.root_find`.
- Diffusivities `Constant`, `PowerLaw`, `Stefan`, `Custom`.
- `exact`: the analytic solutions and mass curves of the ProbConserv instances and
    the Barenblatt solution.
"""

from . import exact as exact
from ._diffusivity import (
    AbstractDiffusivity as AbstractDiffusivity,
    Constant as Constant,
    Custom as Custom,
    PowerLaw as PowerLaw,
    Stefan as Stefan,
)
from ._gpme import PorousMedium as PorousMedium
