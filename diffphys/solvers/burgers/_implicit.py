import equinox as eqx
import jax.numpy as jnp
import lineax as lx

from ... import implicit
from ..._custom_types import Array, ArrayLike, Field
from ._common import check_grid, check_state, check_viscosity, SpectralBurgersTerms


class BurgersImplicit(eqx.Module):
    """Viscous Burgers by the θ-scheme (Crank–Nicolson at θ = 1/2), each step a
    differentiable nonlinear solve.

    Same equations, grid and spatial (dealiased pseudo-spectral) discretisation as
    `BurgersSpectral`. With `v = F[u]`, `L = -ν|k|²` and `N` the nonlinear term, each
    step solves for `v⁺`

    `(1 - θ dt L) v⁺ = (1 + (1 - θ) dt L) v + dt (θ N(v⁺) + (1 - θ) N(v))`,

    written as the preconditioned residual `u⁺ - F⁻¹[rhs / (1 - θ dt L)] = 0` (well
    conditioned at large `ν dt`) and handed to `dp.implicit.root_find` (Newton,
    GMRES inner solves). A gradient through a step is therefore one adjoint solve.
    No stability limit on dt from diffusion (A-stable for θ >= 1/2); large steps at
    high viscosity are what it is for. Second order in dt at θ = 1/2.

    **Arguments:**

    - `num_spatial_dims`, `domain_extent`, `num_points`, `dt`: as `BurgersSpectral`.
    - `viscosity`: `ν > 0`, an array field.
    - `theta`: `1/2` Crank–Nicolson, `1` backward Euler.
    - `rtol`, `atol`: Newton's tolerances; `None` picks them from the state's dtype
        (1e-5 for float32, 1e-11 for float64, relative to the first residual).
    - `dealiasing_fraction`: as `BurgersSpectral`.
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    theta: float = eqx.field(static=True)
    rtol: float | None = eqx.field(static=True)
    atol: float | None = eqx.field(static=True)
    viscosity: Array
    terms: SpectralBurgersTerms

    def __init__(
        self,
        num_spatial_dims: int,
        domain_extent: float,
        num_points: int,
        dt: float,
        *,
        viscosity: ArrayLike = 0.1,
        theta: float = 0.5,
        rtol: float | None = None,
        atol: float | None = None,
        dealiasing_fraction: float = 2 / 3,
    ):
        check_grid(num_spatial_dims, domain_extent, num_points, dt)
        if not 0.5 <= theta <= 1:
            raise ValueError(f"`theta` must lie in [1/2, 1] (A-stable), got {theta}.")
        self.num_spatial_dims = num_spatial_dims
        self.domain_extent = domain_extent
        self.num_points = num_points
        self.dt = dt
        self.theta = theta
        self.rtol = rtol
        self.atol = atol
        self.viscosity = check_viscosity(viscosity, allow_zero=False)
        self.terms = SpectralBurgersTerms(
            num_spatial_dims, domain_extent, num_points, dealiasing_fraction
        )

    def _residual(self, u_next, u):
        terms, dt, theta = self.terms, self.dt, self.theta
        v = terms.forward(u)
        lin = (self.viscosity * terms.laplacian_symbol()).astype(v.dtype)
        rhs = (1 + (1 - theta) * dt * lin) * v + dt * (
            theta * terms.nonlinear(terms.forward(u_next))
            + (1 - theta) * terms.nonlinear(v)
        )
        return u_next - terms.inverse(rhs / (1 - theta * dt * lin))

    def __call__(self, u: Field) -> Field:
        channels = 1 if self.num_spatial_dims == 1 else self.num_spatial_dims
        check_state(u, self.num_spatial_dims, self.num_points, channels)
        single = u.dtype == jnp.float32
        rtol = self.rtol if self.rtol is not None else (1e-5 if single else 1e-11)
        atol = self.atol if self.atol is not None else (1e-6 if single else 1e-13)
        solver = implicit.Newton(
            rtol=rtol,
            atol=atol,
            max_steps=30,
            linear_solver=lx.GMRES(rtol=rtol, atol=atol, restart=30),
        )
        sol = implicit.root_find(lambda y, args: self._residual(y, args), u, u, solver)
        return sol.value
