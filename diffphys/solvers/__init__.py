"""Numerical solvers, one subpackage per family: `poisson` (the diffusion operator,
the pressure operator, MG-PCG and DCDM), `burgers`, `porous_medium` (the generalized
porous medium equation: heat, PME, Stefan), `conservation_law` (1D hyperbolic laws
with inflow/outflow ends), `kuramoto_sivashinsky`, `navier_stokes` (2D vorticity),
`diffusion_sorption`, `darcy` (steady) and `contact` (rigid bodies with hard contact
and friction).

Every grid time stepper is a final subclass of `AbstractStepper`
(`stepper(u, t=0.0) -> u_next`); those in conservation form of
`AbstractConservativeStepper` (`mass`, `step -> (u_next, inflow)`); spectral PDEs of
`AbstractSpectralStepper`, the semi-linear ETDRK engine (`ETDRK1` ... `ETDRK4`).

Gradients: the implicit steppers (`BurgersImplicit`, `PorousMedium`,
`DiffusionSorption`) and the steady solvers (`Darcy`, the Poisson solves) solve
their equations with `diffphys.implicit` and are differentiated by the implicit
function theorem (one adjoint solve per step or solve, no iterate stored); the
explicit ones (`BurgersSpectral`, `BurgersFV`, `ConservationLaw`,
`KuramotoSivashinsky`, `NavierStokesVorticity`) by backprop through the steps, which
`rollout(..., checkpoint=True)` checkpoints (√T memory).
"""

from . import (
    burgers as burgers,
    conservation_law as conservation_law,
    contact as contact,
    darcy as darcy,
    diffusion_sorption as diffusion_sorption,
    kuramoto_sivashinsky as kuramoto_sivashinsky,
    navier_stokes as navier_stokes,
    poisson as poisson,
    porous_medium as porous_medium,
)
from ._base import (
    AbstractConservativeStepper as AbstractConservativeStepper,
    AbstractStepper as AbstractStepper,
)
from ._boundary import (
    cell_centres as cell_centres,
    Dirichlet as Dirichlet,
    Neumann as Neumann,
    Outflow as Outflow,
    Periodic as Periodic,
)
from ._etdrk import (
    AbstractETDRK as AbstractETDRK,
    etdrk as etdrk,
    ETDRK1 as ETDRK1,
    ETDRK2 as ETDRK2,
    ETDRK3 as ETDRK3,
    ETDRK4 as ETDRK4,
)
from ._rollout import mass_budget as mass_budget, rollout as rollout
from ._spectral import (
    AbstractSpectralStepper as AbstractSpectralStepper,
    SpectralGrid as SpectralGrid,
    wavenumbers as wavenumbers,
)
from .burgers import (
    BurgersFV as BurgersFV,
    BurgersImplicit as BurgersImplicit,
    BurgersSpectral as BurgersSpectral,
)
from .conservation_law import ConservationLaw as ConservationLaw
from .darcy import Darcy as Darcy
from .diffusion_sorption import DiffusionSorption as DiffusionSorption
from .kuramoto_sivashinsky import KuramotoSivashinsky as KuramotoSivashinsky
from .navier_stokes import NavierStokesVorticity as NavierStokesVorticity
from .porous_medium import (
    Constant as Constant,
    Custom as Custom,
    PorousMedium as PorousMedium,
    PowerLaw as PowerLaw,
    Stefan as Stefan,
)
