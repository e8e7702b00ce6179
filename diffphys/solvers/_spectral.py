"""The semi-linear pseudo-spectral engine: `u_t = L u + N(u) + f(x, t)` on a periodic
grid, `L` a diagonal Fourier symbol integrated exactly by ETDRK, `N` a dealiased
nonlinear term evaluated in physical space. A spectral PDE is a final subclass of
`AbstractSpectralStepper` that states its symbol (to build its integrator) and its
nonlinear term; the engine does the transforms, the forcing and the time step."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, Field, FieldLike, Scalar, ScalarLike
from ._base import AbstractStepper
from ._etdrk import AbstractETDRK
from ._grid import check_courant, check_state, field_at, state_shape


def _axis_shape(axis: int, num_spatial_dims: int) -> list[int]:
    shape = [1] * num_spatial_dims
    shape[axis] = -1
    return shape


def _wavenumbers(num_spatial_dims: int, domain_extent: float, num_points: int):
    spacing = domain_extent / num_points
    k_full = 2 * np.pi * np.fft.fftfreq(num_points, spacing)
    k_half = 2 * np.pi * np.fft.rfftfreq(num_points, spacing)
    return [
        (k_half if axis == num_spatial_dims - 1 else k_full).reshape(
            _axis_shape(axis, num_spatial_dims)
        )
        for axis in range(num_spatial_dims)
    ]


def wavenumbers(num_spatial_dims: int, domain_extent: float, num_points: int):
    """Angular wavenumbers on the rfft grid, one array per axis, shaped to broadcast
    over `(*N)` with the last axis halved (`N // 2 + 1`). Constants, built with
    NumPy (no compilation per grid) in the default float dtype."""
    ks = _wavenumbers(num_spatial_dims, domain_extent, num_points)
    return [jnp.asarray(k, float) for k in ks]


def dealiasing_mask(num_spatial_dims: int, num_points: int, fraction: float):
    """True for modes kept: |index| below `fraction` of the highest resolved one
    (NumPy)."""
    index_full = np.abs(np.fft.fftfreq(num_points, 1 / num_points))
    index_half = np.fft.rfftfreq(num_points, 1 / num_points)
    limit = fraction * (num_points // 2)
    mask = np.ones((), bool)
    for axis in range(num_spatial_dims):
        index = index_half if axis == num_spatial_dims - 1 else index_full
        mask = mask & (index.reshape(_axis_shape(axis, num_spatial_dims)) <= limit)
    return mask


class SpectralGrid(eqx.Module):
    """A periodic grid `[0, L)^d`, `N` points per axis, and its rfft modes, for
    channels-first fields `(C, *N)`: transforms, wavenumbers `ks` (one per axis,
    with a leading channel axis) and the dealiasing mask (modes above
    `dealiasing_fraction` of the highest one are dropped, as exponax)."""

    num_spatial_dims: int = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    ks: list[Array]
    mask: Array
    minus_k2: Array

    def __init__(
        self, num_spatial_dims, domain_extent, num_points, dealiasing_fraction=2 / 3
    ):
        self.num_spatial_dims = num_spatial_dims
        self.num_points = num_points
        # Constants from NumPy: building a grid compiles nothing.
        ks = _wavenumbers(num_spatial_dims, domain_extent, num_points)
        self.ks = [jnp.asarray(k[None], float) for k in ks]
        modes = (1,) + np.broadcast_shapes(*[k.shape for k in ks])
        mask = dealiasing_mask(num_spatial_dims, num_points, dealiasing_fraction)
        self.mask = jnp.broadcast_to(mask, modes)
        self.minus_k2 = jnp.asarray(
            np.broadcast_to(-sum(k**2 for k in ks), modes), float
        )

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(range(1, self.num_spatial_dims + 1))

    def forward(self, u: Array) -> Array:
        return jnp.fft.rfftn(u, axes=self.axes)

    def inverse(self, v: Array) -> Array:
        shape = (self.num_points,) * self.num_spatial_dims
        return jnp.fft.irfftn(v, s=shape, axes=self.axes)

    def dealias(self, v: Array) -> Array:
        return jnp.where(self.mask, v, 0)

    def wavenumbers(self, like: Array) -> list[Array]:
        """`ks` in `like`'s dtype (complex for rfft coefficients)."""
        return [k.astype(like.dtype) for k in self.ks]

    def laplacian(self) -> Array:
        """The symbol `-|k|²`, broadcast to the modes `(1, *K)`."""
        return self.minus_k2

    def derivative(self, v: Array, axis: int, order: int = 1) -> Array:
        """`∂^order/∂x_axis^order` of the rfft coefficients `v` (`(ik)^order v`)."""
        ik = 1j * self.wavenumbers(v)[axis]
        out = v
        for _ in range(order):  # products, not a complex power
            out = ik * out
        return out

    def gradient(self, v: Array) -> list[Array]:
        """`[∂_1 v, ..., ∂_d v]` of the rfft coefficients `v`, one per axis."""
        return [self.derivative(v, axis) for axis in range(self.num_spatial_dims)]

    def inverse_laplacian(self, v: Array) -> Array:
        """The zero-mean `ψ` with `Δψ = v` (the mean of `v` dropped): the spectral
        Poisson solve, `ψ̂ = -v̂ / |k|²`, `ψ̂(0) = 0`."""
        minus_k2 = self.minus_k2.astype(v.real.dtype)
        safe = jnp.where(minus_k2 == 0, -1.0, minus_k2).astype(v.dtype)
        return jnp.where(minus_k2 == 0, jnp.zeros((), v.dtype), v / safe)

    def zero_mean(self, v: Array) -> Array:
        """`v` with its `k = 0` mode removed (the mean in physical space)."""
        index = (slice(None),) + (0,) * self.num_spatial_dims
        return v.at[index].set(0)


Forcing = Field | Callable[[Scalar], Field] | None

# The advective Courant number a spectral stepper refuses: a guard against gross
# mistakes, not a stability bound (ETDRK integrates the linear part exactly; the
# explicit nonlinear part's limit depends on the scheme and the dissipation).
MAX_COURANT = 2.0


def check_spectral_setup(
    name: str,
    dt: float,
    domain_extent: float,
    num_points: int,
    max_speed: float,
    forcing: Forcing,
    shape: tuple[int, ...],
) -> None:
    """The checks every spectral stepper makes when built: the advective Courant
    number `max_speed dt / dx <= MAX_COURANT` (the error names the largest
    admissible `dt`), and a constant forcing of the state's `shape`."""
    dx = domain_extent / num_points
    check_courant(
        name,
        dt,
        max_speed / dx,
        MAX_COURANT,
        what="the advective Courant number max_speed dt/dx",
        values=f"max_speed = {max_speed}, dx = {dx:.3g}",
        guard=True,
    )
    if forcing is not None and not callable(forcing):
        check_state(forcing, shape)


class AbstractSpectralStepper(AbstractStepper):
    """`u_t = L u + N(u) + f(x, t)` on a periodic grid by ETDRK.

    A final subclass holds `grid` (a `SpectralGrid`), `integrator` (an ETDRK module
    built from its symbol `L`, e.g. `etdrk(order, dt, L)`), `forcing` (`None`, a field
    `(C, *N)` or `f(t) -> (C, *N)`, evaluated at each stage's time) and
    `num_channels`, and defines `nonlinear(v)`: `N` of the rfft coefficients `v`,
    dealiased. The output has the input's dtype.
    """

    num_channels: eqx.AbstractVar[int]
    grid: eqx.AbstractVar[SpectralGrid]
    integrator: eqx.AbstractVar[AbstractETDRK]
    forcing: eqx.AbstractVar[Forcing]

    @abc.abstractmethod
    def nonlinear(self, v: Array) -> Array:
        """The nonlinear term in Fourier space, from the rfft coefficients `v`."""

    def __call__(self, u: FieldLike, t: ScalarLike = 0.0) -> Field:
        shape = state_shape(self.num_channels, self.num_spatial_dims, self.num_points)
        u = check_state(u, shape)
        grid = self.grid

        def rhs(w, time):
            out = self.nonlinear(w)
            f = field_at(self.forcing, time, u)
            return out if f is None else out + grid.forward(f)

        v = self.integrator.step(grid.forward(u), t, rhs)
        return grid.inverse(v).astype(u.dtype)
