import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..._custom_types import Array, ArrayLike, Field, Float, Scalar
from .._etdrk import AbstractETDRK, etdrk
from .._grid import (
    check_grid,
    scalar_parameter,
    speed_promise,
)
from .._spectral import (
    AbstractSpectralStepper,
    check_spectral_setup,
    Forcing,
    SpectralGrid,
)


def kolmogorov_forcing(
    domain_extent: float,
    num_points: int,
    *,
    wavenumber: int = 4,
    amplitude: float = 1.0,
) -> Field:
    """The vorticity forcing `f = −A k cos(k y)`, `k = 2π n / L`, of the body force
    `F = (A sin(k y), 0)` (Kolmogorov flow; `n = 4`, as in Kochkov et al. 2021),
    shape `(1, N, N)`, axis 1 being `y`."""
    y = np.arange(num_points) * domain_extent / num_points
    k = 2 * np.pi * wavenumber / domain_extent
    row = -amplitude * k * np.cos(k * y)
    return jnp.asarray(np.broadcast_to(row, (num_points, num_points))[None], float)


class NavierStokesVorticity(AbstractSpectralStepper):
    """2D incompressible Navier–Stokes in vorticity–stream-function form on the
    periodic `[0, L)²` by the pseudo-spectral ETDRK method (an instance of the
    semi-linear spectral engine).

    Solves `ω_t + u·∇ω = ν Δω − α ω + f` for the vorticity `ω = ∂_x v − ∂_y u`,
    the velocity `u = (∂_y ψ, −∂_x ψ)` from the stream function, `Δψ = −ω` (a
    spectral Poisson solve, `SpectralGrid.inverse_laplacian`, inside the nonlinear
    term). The linear symbol `−ν|k|² − α` (viscosity and a linear drag) is
    integrated exactly; the transport term is written `−∇·(u ω)` (equal, as
    `∇·u = 0`) and dealiased with the 2/3 rule, so the mean vorticity changes only
    by the mean of `f`, and without forcing the energy `½∫|u|²` and the enstrophy
    `½∫ω²` only decay (the truncated transport conserves both). `f` is any
    vorticity forcing, constant or `t -> field`: `kolmogorov_forcing(...)`, or the
    FNO paper's `0.1 (sin 2π(x + y) + cos 2π(x + y))` (scenario `ns-2d`).

    **Arguments:**

    - `num_spatial_dims`: 2 (the only one).
    - `domain_extent`, `num_points`, `dt`: `L`, `N`, the step.
    - `viscosity`: `ν > 0` (array field, differentiable; the Reynolds number is
        `U L / ν`).
    - `drag`: `α >= 0`, linear (Rayleigh) friction (array field).
    - `forcing`: `None`, a field `(1, N, N)` or `t -> field`.
    - `order`: ETDRK order 1–4. ETDRK2 (like every two-stage Runge–Kutta) grows a
        purely advected mode by about `(k u dt)⁴ / 4` per step, which only the
        viscous `ν k² dt` damps: at `k` near the dealiasing cutoff, low `ν` and a
        large step it blows up (measured: `N = 128`, `ν = 1e-3`, `|u| ~ 2`, `dt =
        0.01`; exponax's ETDRK2 too). ETDRK4's stability region covers the
        imaginary axis up to `|k u dt| ≈ 2.8`: use it (in float64) for low
        viscosity at large steps.
    - `max_speed`: a bound on `|u|` the user promises; the Courant number `max_speed
        dt / dx` is checked to be <= 2 at construction, the error naming the largest
        admissible `dt` (a guard against gross mistakes; see `order`).
    - `dealiasing_fraction`, `num_circle_points`, `circle_radius`: as
        `BurgersSpectral`.

    **Call:** `stepper(ω, t=0.0) -> ω_next`, `ω` of shape `(1, N, N)`, axis 0 `x`.
    `velocity(ω)`, `stream_function(ω)`, `energy(ω)` and `enstrophy(ω)` give the
    derived quantities.

    Reference: the pseudo-spectral method of Orszag (1971); this setting is that of
    the FNO paper (Li et al., ICLR 2021) and of exponax's `NavierStokesVorticity`,
    whose drag enters with the opposite sign (`+λω`) and whose velocity is minus
    the usual one (its `(∂_y Δ⁻¹ω, −∂_x Δ⁻¹ω)` has curl `−ω`), so that its solution
    from `−ω₀` is minus ours from `ω₀` (measured in `benchmarks/
    spectral_vs_exponax.py`).
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    num_channels: int = eqx.field(static=True)
    order: int = eqx.field(static=True)
    max_speed: float = eqx.field(static=True)
    viscosity: Array
    drag: Array
    forcing: Forcing
    grid: SpectralGrid
    integrator: AbstractETDRK

    def __init__(
        self,
        num_spatial_dims: int,
        domain_extent: float,
        num_points: int,
        dt: float,
        *,
        viscosity: ArrayLike = 1e-3,
        drag: ArrayLike = 0.0,
        forcing: Forcing = None,
        order: int = 2,
        max_speed: float = 1.0,
        dealiasing_fraction: float = 2 / 3,
        num_circle_points: int = 16,
        circle_radius: float = 1.0,
    ):
        name = "NavierStokesVorticity"
        check_grid(
            num_spatial_dims, domain_extent, num_points, dt, name=name, dims=(2,)
        )
        check_spectral_setup(
            name,
            dt,
            domain_extent,
            num_points,
            max_speed,
            forcing,
            (1, num_points, num_points),
        )
        self.num_spatial_dims = 2
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.num_channels = 1
        self.order = order
        self.max_speed = float(max_speed)
        self.viscosity = scalar_parameter("viscosity", viscosity, allow_zero=False)
        self.drag = scalar_parameter("drag", drag, allow_zero=True)
        self.grid = SpectralGrid(2, domain_extent, num_points, dealiasing_fraction)
        self.forcing = forcing
        self.integrator = etdrk(
            order,
            dt,
            self.viscosity * self.grid.laplacian() - self.drag,
            num_circle_points=num_circle_points,
            circle_radius=circle_radius,
        )

    def _velocity_modes(self, v: Array) -> list[Array]:
        psi = self.grid.inverse_laplacian(-v)
        return [self.grid.derivative(psi, 1), -self.grid.derivative(psi, 0)]

    def nonlinear(self, v: Array) -> Array:
        grid = self.grid
        v = grid.dealias(v)
        w = grid.inverse(v)
        flux = [grid.forward(grid.inverse(c) * w) for c in self._velocity_modes(v)]
        return grid.dealias(
            -(grid.derivative(flux[0], 0) + grid.derivative(flux[1], 1))
        )

    def stream_function(self, omega: Field) -> Field:
        """`ψ` with `Δψ = −ω` and zero mean, `(1, N, N)`."""
        grid = self.grid
        return grid.inverse(grid.inverse_laplacian(-grid.forward(omega)))

    def velocity(self, omega: Field) -> Float[Array, "2 N N"]:
        """`u = (∂_y ψ, −∂_x ψ)`, shape `(2, N, N)`."""
        grid = self.grid
        modes = self._velocity_modes(grid.forward(omega))
        return jnp.concatenate([grid.inverse(m) for m in modes])

    def energy(self, omega: Field) -> Scalar:
        """The kinetic energy `½ ∫ |u|²`."""
        cell = (self.domain_extent / self.num_points) ** 2
        return 0.5 * jnp.sum(self.velocity(omega) ** 2) * cell

    def enstrophy(self, omega: Field) -> Scalar:
        """The enstrophy `½ ∫ ω²`."""
        cell = (self.domain_extent / self.num_points) ** 2
        return 0.5 * jnp.sum(omega**2) * cell

    def broken_promise(self, u: Array) -> str | None:
        speed = jnp.sqrt(jnp.sum(self.velocity(jnp.asarray(u)) ** 2, axis=0))
        return speed_promise("NavierStokesVorticity", self.max_speed, speed)
