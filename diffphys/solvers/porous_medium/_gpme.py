import equinox as eqx
import jax.lax as lax
import jax.numpy as jnp
import lineax as lx

from ... import implicit
from ..._custom_types import Array, Field, FieldLike, Float, ScalarLike
from .._boundary import (
    BoundaryCondition,
    check_boundaries,
    Dirichlet,
    Neumann,
    Periodic,
)
from .._finite_volume import AbstractFiniteVolume1D
from .._grid import check_grid, check_state
from ._diffusivity import AbstractDiffusivity, as_diffusivity, Constant


class PorousMedium(AbstractFiniteVolume1D):
    """The generalized porous medium equation `u_t = ∂_x(k(u) ∂_x u)` in 1D by
    conservative cell-centred finite volumes and an implicit θ-scheme, each step a
    differentiable Newton solve.

    **Space.** `N` cells of width `h = L/N` on `[0, L]` (centres `(i + ½) h`; with
    periodic ends the cells are centred at `i h`, the periodic-grid convention). The
    face fluxes are those of the Kirchhoff potential `Φ(u) = ∫_0^u k`:
    `F_{i+½} = -(Φ(u_{i+1}) - Φ(u_i)) / h`, a Dirichlet end uses the half cell
    `-(Φ(u_0) - Φ(g)) / (h/2)`, a Neumann end the given flux. Second order for smooth
    solutions; degenerate (`k(0) = 0`, PME) and discontinuous (`Stefan`) diffusivities
    need no special case, at first order near the front.

    **Time.** `u⁺ - u = dt [θ R(u⁺, t + dt) + (1 - θ) R(u, t)]` with
    `R = -(F_{i+½} - F_{i-½})/h`: backward Euler at `θ = 1` (the default: first
    order, monotone, keeps `u >= 0` and the maximum principle), Crank–Nicolson at
    `θ = ½` (second order; may undershoot at fronts). Newton (`dp.implicit.root_find`)
    solves for `u⁺` with a tridiagonal direct solve of the Jacobian (its three
    diagonals extracted by three JVPs), or a dense LU on a periodic domain, so a
    gradient through a step (to the state, the diffusivity's parameters and the
    boundary values) is one adjoint solve.

    **Conservation.** The new state is completed from the converged fluxes,
    `u⁺ = u + dt [θ R(u⁺_Newton) + (1 - θ) R(u)]`, so `h Σ u⁺ - h Σ u` equals the
    boundary inflow over the step to round-off, whatever Newton's tolerance;
    `step` returns that inflow (the flux budget).

    **Arguments:**

    - `num_spatial_dims`: 1 (the only one supported).
    - `domain_extent`, `num_points`, `dt`: `L`, `N`, the step.
    - `diffusivity`: `Constant(k)` (heat), `PowerLaw(m)` (PME), `Stefan(u_star)`,
        `Custom(fn, params)` or a callable `k(u)`.
    - `left`, `right`: `Dirichlet(g)`, `Neumann(q)` (inflow flux) or `Periodic()`
        (both ends); values may be functions of time `t -> value`.
    - `theta`: in `[½, 1]`.
    - `rtol`, `atol`: Newton's tolerances on the residual divided by
        `1 + 4 θ dt max k(u) / h²` (`None`: 1e-5/1e-5 in float32, 1e-11/1e-12 in
        float64; `rtol` relative to the first residual). They set the accuracy of
        the solve, not the mass balance, which is exact.
    - `max_steps`: Newton iterations at most.
    - `throw`: raise when Newton fails (the message says what to change), or return
        its last iterate.

    Reference: R. Eymard, T. Gallouët, R. Herbin, *Finite Volume Methods*, Handbook of
    Numerical Analysis VII (2000), ch. 4 (the Kirchhoff form for degenerate
    parabolic problems); ProbConserv's GPME family: Hansen et al., ICML 2023.
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    theta: float = eqx.field(static=True)
    rtol: float | None = eqx.field(static=True)
    atol: float | None = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    throw: bool = eqx.field(static=True)
    periodic: bool = eqx.field(static=True)
    diffusivity: AbstractDiffusivity
    left: BoundaryCondition
    right: BoundaryCondition

    def __init__(
        self,
        num_spatial_dims: int,
        domain_extent: float,
        num_points: int,
        dt: float,
        *,
        diffusivity=Constant(1.0),
        left: BoundaryCondition = Periodic(),
        right: BoundaryCondition = Periodic(),
        theta: float = 1.0,
        rtol: float | None = None,
        atol: float | None = None,
        max_steps: int = 50,
        throw: bool = True,
    ):
        check_grid(
            num_spatial_dims,
            domain_extent,
            num_points,
            dt,
            name="PorousMedium",
            dims=(1,),
        )
        if not 0.5 <= theta <= 1:
            raise ValueError(f"`theta` must lie in [1/2, 1] (A-stable), got {theta}.")
        self.periodic = check_boundaries(
            left, right, (Periodic, Dirichlet, Neumann), "PorousMedium"
        )
        self.num_spatial_dims = 1
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.theta = float(theta)
        self.rtol = rtol
        self.atol = atol
        self.max_steps = max_steps
        self.throw = throw
        self.diffusivity = as_diffusivity(diffusivity)
        self.left = left
        self.right = right

    def fluxes(self, u: Field, t: ScalarLike = 0.0) -> Float[Array, " faces"]:
        """The fluxes `F` (positive towards `+x`) at the `N + 1` faces, the two ends
        included (equal when periodic)."""
        h, phi = self.cell_width, self.diffusivity.potential(u[0])
        if self.periodic:
            return -jnp.diff(jnp.pad(phi, 1, mode="wrap")) / h
        interior = -jnp.diff(phi) / h
        left, right = self.left, self.right
        if isinstance(left, Dirichlet):
            g = self.diffusivity.potential(left.at(t, u.dtype))
            first = -(phi[0] - g) / (h / 2)
        else:
            first = left.at(t, u.dtype)
        if isinstance(right, Dirichlet):
            g = self.diffusivity.potential(right.at(t, u.dtype))
            last = -(g - phi[-1]) / (h / 2)
        else:
            last = -right.at(t, u.dtype)
        return jnp.concatenate([first[None], interior, last[None]])

    def _residual(self, y, args):
        explicit, t_next, scale = args
        rate, _ = self._rate(y, t_next)
        return (y - explicit - self.theta * self.dt * rate) / scale

    def step(
        self, u: FieldLike, t: ScalarLike = 0.0
    ) -> tuple[Field, Float[Array, "2"]]:
        """One step from `u` at time `t`.

        **Returns:** `(u⁺, inflow)`, `inflow = (through the left end, through the
        right end)`: the mass that entered over the step (negative when it left),
        so that `mass(u⁺) - mass(u) == inflow.sum()` to round-off.
        """
        u = check_state(u, (1, self.num_points))
        u = self.diffusivity.check_state(u)
        single = u.dtype == jnp.float32
        rtol = self.rtol if self.rtol is not None else (1e-5 if single else 1e-11)
        atol = self.atol if self.atol is not None else (1e-5 if single else 1e-12)
        t = jnp.asarray(t, u.dtype)
        dt, theta = self.dt, self.theta
        rate, inflow = self._rate(u, t)
        explicit = u + (1 - theta) * dt * rate
        if self.periodic:
            linear_solver, tags = lx.LU(), frozenset()
        else:
            linear_solver, tags = lx.Tridiagonal(), frozenset({lx.tridiagonal_tag})
        solver = implicit.Newton(
            rtol=rtol, atol=atol, max_steps=self.max_steps, linear_solver=linear_solver
        )
        # The residual divided by the size of its diffusion part, about
        # 1 + 4 θ dt max k / h²: its round-off floor is then eps |u| whatever dt/h²,
        # so the tolerances mean the same on every grid (the root is unchanged).
        k_max = jnp.max(self.diffusivity(u[0]))
        scale = lax.stop_gradient(1 + 4 * theta * dt * k_max / self.cell_width**2)
        sol = implicit.root_find(
            self._residual,
            u,
            (explicit, t + dt, scale),
            solver,
            tags=tags,
            throw=self.throw,
        )
        rate_next, inflow_next = self._rate(sol.value, t + dt)
        u_next = explicit + theta * dt * rate_next
        return u_next, dt * ((1 - theta) * inflow + theta * inflow_next)
