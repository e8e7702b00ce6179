import equinox as eqx
import jax.numpy as jnp
import lineax as lx

from ... import implicit
from ..._custom_types import Array, ArrayLike, Field, FieldLike, ScalarLike
from .._base import AbstractStepper
from .._grid import check_grid, check_state, field_at, scalar_parameter, state_shape
from .._spectral import Forcing, SpectralGrid
from ._common import nonlinear, num_channels


class BurgersImplicit(AbstractStepper):
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
    - `forcing`: optional right-hand side, a field or `f(t) -> field`, taken by the
        θ-rule `θ f(t + dt) + (1 - θ) f(t)`.
    - `throw`: raise when Newton fails (default); with `False` a failed step returns
        Newton's last iterate (for rollouts of learned hybrids that may leave the
        solver's range, where the caller judges the trajectory).
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    theta: float = eqx.field(static=True)
    rtol: float | None = eqx.field(static=True)
    atol: float | None = eqx.field(static=True)
    throw: bool = eqx.field(static=True)
    viscosity: Array
    grid: SpectralGrid
    linear: Array
    forcing: Forcing

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
        forcing: Forcing = None,
        throw: bool = True,
    ):
        check_grid(
            num_spatial_dims, domain_extent, num_points, dt, name="BurgersImplicit"
        )
        if not 0.5 <= theta <= 1:
            raise ValueError(f"`theta` must lie in [1/2, 1] (A-stable), got {theta}.")
        self.num_spatial_dims = num_spatial_dims
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.theta = theta
        self.rtol = rtol
        self.atol = atol
        self.throw = throw
        self.viscosity = scalar_parameter("viscosity", viscosity, allow_zero=False)
        self.grid = SpectralGrid(
            num_spatial_dims, domain_extent, num_points, dealiasing_fraction
        )
        self.linear = self.viscosity * self.grid.laplacian()
        self.forcing = forcing

    def _residual(self, u_next, explicit):
        # Newton iterates only the implicit half; `explicit` is fixed for the step.
        grid = self.grid
        lin = self.linear.astype(explicit.dtype)
        implicit_part = self.theta * self.dt * nonlinear(grid, grid.forward(u_next))
        return u_next - grid.inverse(
            (explicit + implicit_part) / (1 - self.theta * self.dt * lin)
        )

    def __call__(self, u: FieldLike, t: ScalarLike = 0.0) -> Field:
        d = self.num_spatial_dims
        u = check_state(u, state_shape(num_channels(d), d, self.num_points))
        single = u.dtype == jnp.float32
        rtol = self.rtol if self.rtol is not None else (1e-5 if single else 1e-11)
        atol = self.atol if self.atol is not None else (1e-6 if single else 1e-13)
        solver = implicit.Newton(
            rtol=rtol,
            atol=atol,
            max_steps=30,
            linear_solver=lx.GMRES(rtol=rtol, atol=atol, restart=30),
        )
        grid = self.grid
        v = grid.forward(u)
        lin = self.linear.astype(v.dtype)
        explicit = (1 + (1 - self.theta) * self.dt * lin) * v + (
            (1 - self.theta) * self.dt * nonlinear(grid, v)
        )
        for weight, time in ((1 - self.theta, t), (self.theta, t + self.dt)):
            f = field_at(self.forcing, time, u)
            if f is not None:
                explicit = explicit + weight * self.dt * grid.forward(f)
        sol = implicit.root_find(self._residual, u, explicit, solver, throw=self.throw)
        return sol.value
