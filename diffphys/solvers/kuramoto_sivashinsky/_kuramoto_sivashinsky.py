import equinox as eqx
import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike
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


_FORMS = ("conservative", "combustion")


class KuramotoSivashinsky(AbstractSpectralStepper):
    """The Kuramoto–Sivashinsky equation on a periodic domain by the pseudo-spectral
    ETDRK method (an instance of the semi-linear spectral engine).

    - `form="conservative"` (1D, the default there; the form of most learned-solver
        benchmarks): `u_t + u u_x + a u_xx + b u_xxxx = 0`, the nonlinear term
        written `(u²/2)_x`, so the mean of `u` is conserved exactly.
    - `form="combustion"` (any dimension; the default in 2D): `u_t + ½|∇u|² + a Δu
        + b Δ²u = 0` for a scalar `u`, with the mean of `½|∇u|²` removed from the
        nonlinear term (as exponax), which keeps the mean of `u` fixed without
        changing `∇u`. Its gradient `∇u` obeys the conservative form in vector
        form, `v_t + ∇(|v|²/2) + a Δv + b Δ²v = 0`, and in 1D `u_x` is exactly the
        conservative solution. The vector conservative form is not offered in 2D:
        nothing there damps the long-wave curl of `v`, which grows like the unstable
        modes from round-off (see docs/design-decisions.md).

    `Δ²` is the true biharmonic (`|k|⁴`; exponax's 2D operator is `Σ k_i⁴`). The
    symbol `L(k) = a|k|² − b|k|⁴` is integrated exactly (ETDRK, Cox & Matthews 2002,
    coefficients by the contour integrals of Kassam & Trefethen 2005, whose
    benchmark is this equation); the nonlinear term is dealiased by truncating the
    modes above `dealiasing_fraction` of the highest.

    With `a = b = 1` the domain length `L` is the bifurcation parameter: the modes
    `2π m / L < 1` grow (`exact.growth_rate`), and the 1D dynamics are chaotic from
    about `L = 60`. Rescaling `x` shows that `b` plays the same part: the equation
    with `b` on `[0, L)` is the one with `b = 1` on `[0, L/√b)`.

    **Arguments:**

    - `num_spatial_dims`, `domain_extent`, `num_points`, `dt`: the grid `(d, L, N)`
        and the step.
    - `form`: `"conservative"` (1D only) or `"combustion"`; default the former in
        1D, the latter otherwise.
    - `anti_diffusion`: `a >= 0`, the coefficient of the destabilising `Δu` (array
        field, differentiable).
    - `hyper_diffusion`: `b > 0`, the coefficient of `Δ²u` (array field).
    - `order`: ETDRK order 1–4 (2 is the float32 default; 4 with float64).
    - `forcing`: optional right-hand side `f` (a field `(1, *N)` or `t -> field`).
    - `max_speed`: a bound on the advection speed the user promises (`|u|` in the
        conservative form, `|∇u|` in the combustion form; with `a = b = 1` we
        measured at most 3.4 in 1D at `L = 60` and 5.0 in 2D at `L = 30`); the
        Courant number `max_speed dt / dx` is checked to be <= 2 at construction,
        the error naming the largest admissible `dt` (a guard: ETDRK2 ran stably at
        Courant 7 in 1D and 4 in 2D on those cases).
    - `dealiasing_fraction`, `num_circle_points`, `circle_radius`: as
        `BurgersSpectral`.

    **Call:** `stepper(u, t=0.0) -> u_next`, `u` of shape `(1, *N)`.

    References: Y. Kuramoto & T. Tsuzuki, Prog. Theor. Phys. 55 (1976);
    G. Sivashinsky, Acta Astronautica 4 (1977); A.-K. Kassam & L. N. Trefethen,
    SIAM J. Sci. Comput. 26 (2005); the 2D form: A. Kalogirou, E. Keaveny &
    D. Papageorgiou, Proc. R. Soc. A 471 (2015).
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    num_channels: int = eqx.field(static=True)
    form: str = eqx.field(static=True)
    order: int = eqx.field(static=True)
    max_speed: float = eqx.field(static=True)
    anti_diffusion: Array
    hyper_diffusion: Array
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
        form: str | None = None,
        anti_diffusion: ArrayLike = 1.0,
        hyper_diffusion: ArrayLike = 1.0,
        order: int = 2,
        forcing: Forcing = None,
        max_speed: float = 5.0,
        dealiasing_fraction: float = 2 / 3,
        num_circle_points: int = 16,
        circle_radius: float = 1.0,
    ):
        name = "KuramotoSivashinsky"
        check_grid(
            num_spatial_dims, domain_extent, num_points, dt, name=name, dims=(1, 2)
        )
        if form is None:
            form = "conservative" if num_spatial_dims == 1 else "combustion"
        if form not in _FORMS:
            raise ValueError(
                f"{name}: `form` must be 'conservative' or 'combustion', got {form!r}."
            )
        if form == "conservative" and num_spatial_dims != 1:
            raise ValueError(
                f"{name}: the conservative form is 1D only; in {num_spatial_dims}D "
                "use form='combustion' (its gradient is the vector conservative form)."
            )
        check_spectral_setup(
            name,
            dt,
            domain_extent,
            num_points,
            max_speed,
            forcing,
            (1,) + (num_points,) * num_spatial_dims,
        )
        self.num_spatial_dims = num_spatial_dims
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.num_channels = 1
        self.form = form
        self.order = order
        self.max_speed = float(max_speed)
        self.anti_diffusion = scalar_parameter(
            "anti_diffusion", anti_diffusion, allow_zero=True
        )
        self.hyper_diffusion = scalar_parameter(
            "hyper_diffusion", hyper_diffusion, allow_zero=False
        )
        self.grid = SpectralGrid(
            num_spatial_dims, domain_extent, num_points, dealiasing_fraction
        )
        self.forcing = forcing
        laplacian = self.grid.laplacian()
        self.integrator = etdrk(
            order,
            dt,
            -self.anti_diffusion * laplacian - self.hyper_diffusion * laplacian**2,
            num_circle_points=num_circle_points,
            circle_radius=circle_radius,
        )

    def nonlinear(self, v: Array) -> Array:
        grid = self.grid
        v = grid.dealias(v)
        if self.form == "conservative":
            u = grid.inverse(v)
            out = -0.5 * grid.derivative(grid.forward(u**2), 0)
        else:
            gradient_norm = sum(grid.inverse(g) ** 2 for g in grid.gradient(v))
            out = -0.5 * grid.zero_mean(grid.forward(gradient_norm))
        return grid.dealias(out)

    def broken_promise(self, u: Array) -> str | None:
        speed = u
        if self.form == "combustion":  # the advection speed is |∇u|
            grads = self.grid.gradient(self.grid.forward(jnp.asarray(u)))
            speed = jnp.sqrt(sum(self.grid.inverse(g) ** 2 for g in grads))
        return speed_promise("KuramotoSivashinsky", self.max_speed, speed)
