import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import lineax as lx

from ... import implicit
from ..._custom_types import Array, ArrayLike, Field, FieldLike, Float, ScalarLike
from .._finite_volume import AbstractFiniteVolume1D
from .._grid import check_grid, check_state, field_at, scalar_parameter
from .._spectral import Forcing


_METHODS = ("tr-bdf2", "backward-euler", "crank-nicolson")
_GAMMA = 2 - 2**0.5  # TR-BDF2's stage fraction: equal Jacobians in both stages


class DiffusionSorption(AbstractFiniteVolume1D):
    """Diffusion–sorption (PDEBench's 1D benchmark): `u_t = D / R(u) u_xx` on
    `[0, L]`, by conservative cell-centred finite volumes and an implicit θ-scheme,
    each step a differentiable Newton solve.

    **Model.** A dissolved concentration `u` diffuses (coefficient `D`) through a
    porous medium of porosity `φ` and dry bulk density `ρ_s` that sorbs it by the
    Freundlich isotherm `s = k_f u^{n_f}`. Mass conservation of the total
    `M(u) = u + ((1 − φ)/φ) ρ_s k_f u^{n_f}` reads `M(u)_t = D u_xx`, i.e.
    `u_t = D / R(u) u_xx` with the retardation factor `R(u) = M'(u) = 1 + ((1 −
    φ)/φ) ρ_s k_f n_f u^{n_f − 1}` (Praditia et al. 2021; PDEBench, Takamoto et al.
    2022). With `n_f < 1`, `R(u) → ∞` as `u → 0⁺`: the state must stay positive
    (a state with `u <= 0` is refused; the scheme keeps `u > 0` from positive data).

    **Boundaries** (PDEBench's generator): `u(0, t) = u_in` (the inlet, the
    solubility, 1) and the outflow condition `u(L, t) = −D u_x(L, t)` (the outflowing
    diffusive flux equals the boundary value). PDEBench's paper writes `u(1, t) = D
    u_x(1, t)`; its code (`sim_diff_sorp.py`, the ghost cell `D (u_{N−2} − u_{N−1}) /
    Δx`) has the sign used here, and with the paper's sign the boundary would feed
    mass in at a rate growing with `u`. Unlike PDEBench, both conditions are imposed
    at the faces (half-cell differences), so the scheme is second order up to the
    boundary, and the sorption term is not regularised (PDEBench evaluates `R` at
    `u + 1e-6`).

    **Space.** `N` cells of width `h = L/N`, face fluxes `F_{i+½} = −D (u_{i+1} −
    u_i)/h`, the inlet's `−D (u_0 − u_in)/(h/2)`, the outlet's `2D u_{N−1} / (h +
    2D)` (the Robin condition solved for the face value).

    **Time.** `M(u)_t = Q(u, t)`, `Q = −(F_{i+½} − F_{i−½})/h + s`, by one of
    `method`:
    - `"tr-bdf2"` (default): the trapezoidal rule to `t + γ dt`, then BDF2 to
        `t + dt`, `γ = 2 − √2` (Bank et al. 1985; Hosea & Shampine 1996): second
        order and L-stable; two Newton solves per step. Its trapezoidal stage is not
        monotone: from data that jump (PDEBench's constant initial data meet
        neither boundary condition) a step can go negative, where `M` is singular;
        such a step is redone by backward Euler (measured: only the first step of
        PDEBench's recipe, at `dt >= 0.2` s);
    - `"backward-euler"`: `M(u⁺) − M(u) = dt Q(u⁺)`, first order, monotone (keeps
        `u > 0`);
    - `"crank-nicolson"`: second order, not L-stable: it oscillates, and can go
        negative, after the initial jump at PDEBench's step sizes.
    Each stage solves `M(y) − w dt Q(y) = rhs` by Newton (`dp.implicit.root_find`,
    tridiagonal Jacobian), so gradients through a step (to the state, `D`, `φ`,
    `ρ_s`, `k_f`, `n_f`, `u_in`) are one adjoint solve per stage. The stages'
    weights telescope, so `mass(u) = h Σ M(u_i)` changes by the boundary inflow
    (and the source) that `step` reports, up to Newton's tolerance.

    **Arguments:**

    - `num_spatial_dims`: 1 (the only one).
    - `domain_extent`, `num_points`, `dt`: `L`, `N`, the step (s).
    - `diffusivity`: `D > 0` (PDEBench 5e-4).
    - `porosity`: `φ` in `(0, 1)` (0.29).
    - `density`: `ρ_s >= 0`, dry bulk density (2880).
    - `freundlich_k`: `k_f >= 0` (3.5e-4).
    - `freundlich_n`: `n_f > 0`, the Freundlich exponent (0.874).
    - `inlet`: `u_in > 0`, the inlet concentration (1).
    - `source`: optional `s(x, t)` added to `Q`: a field `(1, N)` or `t -> field`
        (manufactured solutions).
    - `method`: `"tr-bdf2"`, `"backward-euler"` or `"crank-nicolson"`.
    - `rtol`, `atol`: Newton's tolerances on the residual divided by `1 + 4 w dt D /
        h²` (`None`: 1e-5/1e-5 in float32, 1e-11/1e-12 in float64).
    - `max_steps`: Newton iterations at most.
    - `throw`: raise when Newton fails, or return its last iterate.

    All physical parameters are array fields (differentiable).
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    method: str = eqx.field(static=True)
    rtol: float | None = eqx.field(static=True)
    atol: float | None = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    throw: bool = eqx.field(static=True)
    periodic: bool = eqx.field(static=True)
    diffusivity: Array
    porosity: Array
    density: Array
    freundlich_k: Array
    freundlich_n: Array
    inlet: Array
    source: Forcing

    def __init__(
        self,
        num_spatial_dims: int,
        domain_extent: float,
        num_points: int,
        dt: float,
        *,
        diffusivity: ArrayLike = 5e-4,
        porosity: ArrayLike = 0.29,
        density: ArrayLike = 2880.0,
        freundlich_k: ArrayLike = 3.5e-4,
        freundlich_n: ArrayLike = 0.874,
        inlet: ArrayLike = 1.0,
        source: Forcing = None,
        method: str = "tr-bdf2",
        rtol: float | None = None,
        atol: float | None = None,
        max_steps: int = 50,
        throw: bool = True,
    ):
        name = "DiffusionSorption"
        check_grid(
            num_spatial_dims, domain_extent, num_points, dt, name=name, dims=(1,)
        )
        if method not in _METHODS:
            raise ValueError(
                f"{name}: `method` must be one of {', '.join(_METHODS)}, got "
                f"{method!r}."
            )
        self.num_spatial_dims = 1
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.method = method
        self.rtol, self.atol = rtol, atol
        self.max_steps = max_steps
        self.throw = throw
        self.periodic = False
        self.diffusivity = scalar_parameter(
            "diffusivity", diffusivity, allow_zero=False
        )
        porosity = scalar_parameter("porosity", porosity, allow_zero=False)
        self.porosity = _below_one(porosity)
        self.density = scalar_parameter("density", density, allow_zero=True)
        self.freundlich_k = scalar_parameter(
            "freundlich_k", freundlich_k, allow_zero=True
        )
        self.freundlich_n = scalar_parameter(
            "freundlich_n", freundlich_n, allow_zero=False
        )
        self.inlet = scalar_parameter("inlet", inlet, allow_zero=False)
        if source is not None and not callable(source):
            check_state(source, (1, num_points))
        self.source = source

    @property
    def _sorption(self) -> Array:
        """`((1 − φ)/φ) ρ_s k_f`, the coefficient of `u^{n_f}` in `M`."""
        return (1 - self.porosity) / self.porosity * self.density * self.freundlich_k

    def _sorption_terms(self, dtype):
        """`((1 − φ)/φ) ρ_s k_f` and `n_f` in the state's dtype."""
        return self._sorption.astype(dtype), self.freundlich_n.astype(dtype)

    def storage(self, u: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """The total concentration `M(u) = u + ((1 − φ)/φ) ρ_s k_f u^{n_f}` (dissolved
        and sorbed, per pore volume). Defined for `u < 0` by odd extension, so a
        Newton iterate that overshoots stays finite; states are checked positive."""
        c, n = self._sorption_terms(u.dtype)
        return u + c * jnp.sign(u) * jnp.abs(u) ** n

    def retardation(self, u: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """`R(u) = 1 + ((1 − φ)/φ) ρ_s k_f n_f u^{n_f − 1}`, singular at `u = 0` for
        `n_f < 1`: a `u <= 0` is refused with a run-time error."""
        u = _positive(jnp.asarray(u))
        c, n = self._sorption_terms(u.dtype)
        return 1 + c * n * u ** (n - 1)

    def mass(self, u: Field) -> Array:
        """`h Σ M(u_i)`: the total (dissolved and sorbed) mass."""
        return self.cell_width * jnp.sum(self.storage(u))

    def fluxes(self, u: Field, t: ScalarLike = 0.0) -> Float[Array, " faces"]:
        """The fluxes `F` (positive towards `+x`) at the `N + 1` faces."""
        h, D, v = self.cell_width, self.diffusivity.astype(u.dtype), u[0]
        interior = -D * jnp.diff(v) / h
        first = -D * (v[0] - self.inlet.astype(v.dtype)) / (h / 2)
        last = 2 * D * v[-1] / (h + 2 * D)
        return jnp.concatenate([first[None], interior, last[None]])

    def _sourced_rate(self, u, t):
        """`Q = −(F_{i+½} − F_{i−½})/h + s` and the inflows (and the source's)."""
        rate, inflow = self._rate(u, t)
        s = field_at(self.source, t, u)
        if s is None:
            return rate, inflow
        return rate + s, jnp.concatenate([inflow, self.cell_width * jnp.sum(s)[None]])

    def _residual(self, y, args):
        rhs, weight, t_next, scale = args
        rate, _ = self._sourced_rate(y, t_next)
        return (self.storage(y) - rhs - weight * self.dt * rate) / scale

    def _stage(self, y0, rhs, weight, t_next):
        """`y` with `M(y) − weight dt Q(y, t_next) = rhs` by Newton from `y0`; returns
        `y`, `Q(y)` and the inflow rates at `y`."""
        single = y0.dtype == jnp.float32
        rtol = self.rtol if self.rtol is not None else (1e-5 if single else 1e-11)
        atol = self.atol if self.atol is not None else (1e-5 if single else 1e-12)
        # The residual divided by the size of its diffusion part: the tolerances
        # then mean the same on every grid (the root is unchanged).
        scale = lax.stop_gradient(
            1
            + 4
            * weight
            * self.dt
            * self.diffusivity.astype(y0.dtype)
            / self.cell_width**2
        )
        solver = implicit.Newton(
            rtol=rtol,
            atol=atol,
            max_steps=self.max_steps,
            linear_solver=lx.Tridiagonal(),
        )
        sol = implicit.root_find(
            self._residual,
            y0,
            (rhs, weight, t_next, scale),
            solver,
            tags=frozenset({lx.tridiagonal_tag}),
            throw=self.throw,
        )
        return sol.value, *self._sourced_rate(sol.value, t_next)

    def step(self, u: FieldLike, t: ScalarLike = 0.0) -> tuple[Field, Array]:
        """One step from `u` at time `t`.

        **Returns:** `(u⁺, inflow)`: the mass that entered over the step through
        the (inlet, outlet), and, with a `source`, its contribution as a third
        entry, so that `mass(u⁺) − mass(u) == inflow.sum()` to Newton's tolerance.
        """
        u = _positive(check_state(u, (1, self.num_points)))
        t = jnp.asarray(t, u.dtype)
        dt, m = self.dt, self.storage(u)
        rate, inflow = self._sourced_rate(u, t)

        def backward_euler(_):
            u_next, _, inflow_next = self._stage(u, m, 1.0, t + dt)
            return u_next, dt * inflow_next

        if self.method == "backward-euler":
            return backward_euler(None)
        if self.method == "crank-nicolson":
            u_next, _, inflow_next = self._stage(u, m + dt / 2 * rate, 0.5, t + dt)
            return u_next, dt / 2 * (inflow + inflow_next)
        g = _GAMMA
        mid, _, inflow_mid = self._stage(u, m + g * dt / 2 * rate, g / 2, t + g * dt)
        a, b, c = 1 / (g * (2 - g)), (1 - g) ** 2 / (g * (2 - g)), (1 - g) / (2 - g)
        u_next, _, inflow_next = self._stage(
            mid, a * self.storage(mid) - b * m, c, t + dt
        )
        # M⁺ − M = a (M* − M) + c dt Q⁺ = a γ dt (Q + Q*)/2 + c dt Q⁺ (a − b = 1).
        inflow = dt * (a * g / 2 * (inflow + inflow_mid) + c * inflow_next)
        # The trapezoidal stage is not monotone: from data that jump (the first
        # step from data that do not meet the boundary conditions) it can go
        # negative, where M is singular. Such a step is redone by backward Euler.
        return lax.cond(
            jnp.all(u_next > 0), lambda _: (u_next, inflow), backward_euler, None
        )


def _positive(u: Array) -> Array:
    return eqx.error_if(
        u,
        jnp.any(u <= 0),
        "DiffusionSorption: the concentration must be > 0 everywhere (the "
        "retardation factor R(u) ~ u^(n_f - 1) is singular at u = 0); start from "
        "positive data, e.g. u0 = max(u0, 1e-6).",
    )


def _below_one(porosity: Array) -> Array:
    if not isinstance(porosity, jax.core.Tracer) and not float(porosity) < 1:
        raise ValueError(f"`porosity` must be in (0, 1), got {float(porosity)}.")
    return eqx.error_if(porosity, porosity >= 1, "`porosity` must be in (0, 1).")
