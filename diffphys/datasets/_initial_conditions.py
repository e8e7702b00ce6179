import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import PRNGKeyArray

from .._custom_types import Field
from ..solvers import wavenumbers


def _check_dims(num_spatial_dims: int, supported=(1, 2, 3)):
    if num_spatial_dims not in supported:
        raise ValueError(
            f"`num_spatial_dims` must be one of {supported}, got {num_spatial_dims}."
        )


def _check_points(num_points: int, num_spatial_dims: int):
    if num_points < 4:
        raise ValueError(f"`num_points` must be >= 4, got {num_points}.")
    return (num_points,) * num_spatial_dims


def _normalise(u, zero_mean: bool, max_one: bool):
    if zero_mean:
        u = u - jnp.mean(u)
    if max_one:
        u = u / jnp.maximum(jnp.max(jnp.abs(u)), jnp.finfo(u.dtype).tiny)
    return u


def _mode_indices(shape):
    # Integer wavenumbers of the rfftn grid: angular wavenumbers on a 2π-periodic box.
    return wavenumbers(len(shape), 2 * jnp.pi, shape[0])


class AbstractInitialCondition(eqx.Module):
    """A random initial condition: `ic(num_points, *, key) -> (1, *N)` on the periodic
    grid `x_i = i L / N` (`L` is irrelevant to these generators unless stated).

    Batch with `jax.vmap(lambda k: ic(N, key=k))(jr.split(key, B))`.
    """

    num_spatial_dims: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, num_points: int, *, key: PRNGKeyArray) -> Field:
        """Draw one initial condition of shape `(1, *(num_points,) * d)`."""


class RandomTruncatedFourier(AbstractInitialCondition):
    """A random Fourier series truncated at integer wavenumber `cutoff`.

    Every rfft mode with `max_j |k_j| <= cutoff` (`k = 0` excluded when `zero_mean`)
    gets an independent standard complex Gaussian coefficient; all other modes are
    zero. Then optionally scaled so that `max|u| = 1`.
    """

    num_spatial_dims: int = eqx.field(static=True)
    cutoff: int = eqx.field(default=5, static=True)
    zero_mean: bool = eqx.field(default=True, static=True)
    max_one: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        _check_dims(self.num_spatial_dims)
        if self.cutoff < 1:
            raise ValueError(f"`cutoff` must be >= 1, got {self.cutoff}.")

    def __call__(self, num_points: int, *, key: PRNGKeyArray) -> Field:
        shape = _check_points(num_points, self.num_spatial_dims)
        if self.cutoff > num_points // 2 - 1:
            raise ValueError(
                f"cutoff {self.cutoff} needs num_points >= {2 * self.cutoff + 2}."
            )
        ks = _mode_indices(shape)
        keep = jnp.ones((), bool)
        for k in ks:
            keep = keep & (jnp.abs(k) <= self.cutoff)
        spectral_shape = jnp.broadcast_shapes(*[k.shape for k in ks])
        kr, ki = jr.split(key)
        coefficients = jax.lax.complex(
            jr.normal(kr, spectral_shape), jr.normal(ki, spectral_shape)
        )
        coefficients = jnp.where(keep, coefficients, 0)
        u = jnp.fft.irfftn(coefficients, s=shape)
        return _normalise(u, self.zero_mean, self.max_one)[None]


class GaussianRandomField(AbstractInitialCondition):
    """A Gaussian random field with power spectrum `S(|k|) ∝ |k|^(-powerlaw_exponent)`
    (or any `spectrum` callable of the integer wavenumber magnitude).

    White Gaussian noise is filtered in Fourier space by `sqrt(S(|k|))`; the `k = 0`
    mode is removed when `zero_mean`. Then optionally scaled so that `max|u| = 1`.
    """

    num_spatial_dims: int = eqx.field(static=True)
    powerlaw_exponent: float = 3.0
    spectrum: Callable | None = eqx.field(default=None, static=True)
    zero_mean: bool = eqx.field(default=True, static=True)
    max_one: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        _check_dims(self.num_spatial_dims)

    def __call__(self, num_points: int, *, key: PRNGKeyArray) -> Field:
        shape = _check_points(num_points, self.num_spatial_dims)
        ks = _mode_indices(shape)
        magnitude = jnp.sqrt(sum(k**2 for k in ks))
        safe = jnp.where(magnitude == 0, 1.0, magnitude)
        if self.spectrum is None:
            power = safe ** (-self.powerlaw_exponent)
        else:
            power = self.spectrum(safe)
        power = jnp.where(magnitude == 0, 0.0 if self.zero_mean else 1.0, power)
        noise = jnp.fft.rfftn(jr.normal(key, shape))
        u = jnp.fft.irfftn(noise * jnp.sqrt(power).astype(noise.dtype), s=shape)
        return _normalise(u, self.zero_mean, self.max_one)[None]


class SineSum(AbstractInitialCondition):
    """PDEBench's 1D initial conditions (their Burgers/advection generators).

    `u = Σ_{i=1}^{num_waves} a_i sin(k_i x + φ_i)` on `[0, L)` with `k_i = 2π n_i / L`,
    `n_i` uniform in `1..max_wavenumber`, `a_i ~ U(0, 1)`, `φ_i ~ U(0, 2π)`; then with
    probability `abs_probability` the absolute value is taken, the sign is flipped
    with probability 1/2, and with probability `window_probability` the field is
    multiplied by a smooth box `(tanh((x - x_L)/w) - tanh((x - x_R)/w)) / 2` with
    `x_L ∈ [0.1, 0.45] L`, `x_R ∈ [0.55, 0.9] L`, `w = 0.01 L`. Every draw uses its own
    key (PDEBench's generator reuses one key for several draws, correlating them).
    """

    num_spatial_dims: int = eqx.field(default=1, static=True)
    num_waves: int = eqx.field(default=2, static=True)
    max_wavenumber: int = eqx.field(default=4, static=True)
    abs_probability: float = 0.1
    window_probability: float = 0.1

    def __check_init__(self):
        _check_dims(self.num_spatial_dims, supported=(1,))
        if self.num_waves < 1 or self.max_wavenumber < 1:
            raise ValueError("`num_waves` and `max_wavenumber` must be >= 1.")

    def __call__(self, num_points: int, *, key: PRNGKeyArray) -> Field:
        (n,) = _check_points(num_points, 1)
        keys = jr.split(key, 7)
        x = jnp.arange(n, dtype=float) / n  # in units of L
        modes = jr.randint(keys[0], (self.num_waves,), 1, self.max_wavenumber + 1)
        modes = modes.astype(x.dtype)
        amplitudes = jr.uniform(keys[1], (self.num_waves,))
        phases = jr.uniform(keys[2], (self.num_waves,), maxval=2 * jnp.pi)
        waves = amplitudes[:, None] * jnp.sin(
            2 * jnp.pi * modes[:, None] * x[None] + phases[:, None]
        )
        u = jnp.sum(waves, axis=0)
        u = jnp.where(jr.uniform(keys[3]) < self.abs_probability, jnp.abs(u), u)
        u = jnp.where(jr.bernoulli(keys[4]), -u, u)
        edges = jr.uniform(
            keys[5], (2,), minval=jnp.array([0.1, 0.55]), maxval=jnp.array([0.45, 0.9])
        )
        box = 0.5 * (jnp.tanh((x - edges[0]) / 0.01) - jnp.tanh((x - edges[1]) / 0.01))
        u = jnp.where(jr.uniform(keys[6]) < self.window_probability, u * box, u)
        return u[None]


class PiecewiseConstant(AbstractInitialCondition):
    """Discontinuous 1D data: `num_pieces` constant pieces between sorted random
    breakpoints on `[0, L)`, values uniform in `[low, high]` (periodic: the last piece
    wraps onto the first only through the boundary)."""

    num_spatial_dims: int = eqx.field(default=1, static=True)
    num_pieces: int = eqx.field(default=4, static=True)
    low: float = -1.0
    high: float = 1.0

    def __check_init__(self):
        _check_dims(self.num_spatial_dims, supported=(1,))
        if self.num_pieces < 1:
            raise ValueError(f"`num_pieces` must be >= 1, got {self.num_pieces}.")
        if not self.low < self.high:
            raise ValueError(f"Need low < high, got {self.low}, {self.high}.")

    def __call__(self, num_points: int, *, key: PRNGKeyArray) -> Field:
        (n,) = _check_points(num_points, 1)
        kb, kv = jr.split(key)
        breaks = jnp.sort(jr.uniform(kb, (self.num_pieces - 1,)))
        values = jr.uniform(kv, (self.num_pieces,), minval=self.low, maxval=self.high)
        x = jnp.arange(n, dtype=float) / n
        piece = jnp.searchsorted(breaks, x, side="right")
        return values[piece][None]


class ThresholdedGaussianField(AbstractInitialCondition):
    """A two-valued random field: the sign of a Gaussian random field with the
    covariance `(−Δ + τ² I)^{−α}` (zero Neumann conditions, so a cosine series on
    `[0, 1]^d`, zero mean), `high` where it is `>= 0` and `low` elsewhere: the Darcy
    permeability of the FNO paper (Li et al. 2021, §5.2: `α = 2`, `τ = 3`, values 12
    and 3).

    Unlike the periodic generators it lives on the `N` nodes `x_i = i / (N − 1)` of
    `[0, 1]` per axis, boundary included (the grid of `dp.solvers.Darcy`). The
    cosine series is summed directly (`N` modes per axis, `O(N^{d+1})`), so any `N`
    works.
    """

    num_spatial_dims: int = eqx.field(default=2, static=True)
    alpha: float = eqx.field(default=2.0, static=True)
    tau: float = eqx.field(default=3.0, static=True)
    high: float = eqx.field(default=12.0, static=True)
    low: float = eqx.field(default=3.0, static=True)

    def __check_init__(self):
        _check_dims(self.num_spatial_dims)
        if not (self.alpha > 0 and self.tau >= 0):
            raise ValueError(
                f"Need alpha > 0 and tau >= 0, got alpha={self.alpha}, tau={self.tau}."
            )

    def __call__(self, num_points: int, *, key: PRNGKeyArray) -> Field:
        shape = _check_points(num_points, self.num_spatial_dims)
        k = jnp.arange(num_points, dtype=float)
        x = jnp.linspace(0.0, 1.0, num_points)
        basis = jnp.cos(jnp.pi * x[:, None] * k[None, :])  # (node, mode)
        ks = jnp.meshgrid(*([k] * self.num_spatial_dims), indexing="ij")
        eigen = (jnp.pi**2 * sum(m**2 for m in ks) + self.tau**2) ** (-self.alpha / 2)
        eigen = jnp.where(sum(ks) == 0, 0.0, eigen)  # zero mean
        u = jr.normal(key, shape) * eigen
        for axis in range(self.num_spatial_dims):
            u = jnp.moveaxis(jnp.tensordot(basis, u, axes=([1], [axis])), 0, axis)
        return jnp.where(u >= 0, self.high, self.low)[None]


class FromCallable(AbstractInitialCondition):
    """Wrap a user function `fn(x, key) -> u`: `x` is the tuple of grid coordinates
    (`indexing="ij"`, each `(*N)`, on `[0, domain_extent)`), `u` of shape `(*N)` or
    `(C, *N)`."""

    fn: Callable = eqx.field(static=True)
    num_spatial_dims: int = eqx.field(default=1, static=True)
    domain_extent: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        _check_dims(self.num_spatial_dims)
        if not callable(self.fn):
            raise ValueError("`fn` must be a callable fn(x, key) -> field.")

    def __call__(self, num_points: int, *, key: PRNGKeyArray) -> Field:
        shape = _check_points(num_points, self.num_spatial_dims)
        axes = [jnp.arange(n, dtype=float) * self.domain_extent / n for n in shape]
        x = tuple(jnp.meshgrid(*axes, indexing="ij"))
        u = jnp.asarray(self.fn(x, key))
        if u.shape == shape:
            u = u[None]
        if u.shape[1:] != shape:
            raise ValueError(
                f"fn returned shape {u.shape}; expected {shape} or (C, *{shape})."
            )
        return u
