from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Complex, Float, PRNGKeyArray

from .._custom_types import Field, OutField, ScalarLike
from ._base import AbstractOperator


def append_grid(u: Field) -> Array:
    """`u (C, *N)` with periodic coordinates `sin(2πx/L)`, `cos(2πx/L)` of each axis
    appended as extra channels (the grid features of FNO and DyMixOp). On a periodic
    domain the raw coordinate `x/L` of Li et al. jumps at the wrap, which a
    convolution or stencil sees as a shock; its sine and cosine do not."""
    axes = [2 * jnp.pi * jnp.arange(n, dtype=u.dtype) / n for n in u.shape[1:]]
    grid = jnp.stack(jnp.meshgrid(*axes, indexing="ij"))
    return jnp.concatenate([u, jnp.sin(grid), jnp.cos(grid)])


def check_state(u: Field, num_spatial_dims: int, name: str) -> None:
    if u.ndim != num_spatial_dims + 1:
        raise ValueError(
            f"{name} over {num_spatial_dims} spatial dimensions takes (C, *N) with "
            f"{num_spatial_dims} spatial axes, got shape {u.shape}."
        )


def check_sizes(num_spatial_dims, *sizes) -> None:
    if num_spatial_dims not in (1, 2, 3):
        raise ValueError(
            f"`num_spatial_dims` must be 1, 2 or 3, got {num_spatial_dims}."
        )
    if min(sizes) < 1:
        raise ValueError("Channels, modes, width and num_layers must be >= 1.")


def count_parameters(model) -> int:
    """Trainable real numbers in `model` (a complex array counts twice)."""
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return sum(x.size * (2 if jnp.iscomplexobj(x) else 1) for x in leaves)


def _mode_indices(num_points: int, modes: int, num_spatial_dims: int):
    """Index arrays of the kept rfftn modes: `|k| < modes` on the full axes (positive
    then negative frequencies), `0 <= k < modes` on the last (halved) axis."""
    full = np.concatenate([np.arange(modes), np.arange(-modes, 0)]) % num_points
    return [full] * (num_spatial_dims - 1) + [np.arange(modes)]


class SpectralConv(eqx.Module):
    """`F⁻¹[R · (F v)|_{|k| < modes}]`: a learned complex channel-mixing matrix per
    kept Fourier mode; all other modes are dropped (Li et al. 2021, eq. 4).

    Weights are stored per mode index, so the layer applies unchanged on any grid
    with at least `2 * modes` points per axis (resolution transfer). They are kept
    as real and imaginary parts on a trailing axis of 2, so every optimiser treats
    them as ordinary real parameters; `complex_weights` assembles them."""

    weights: Float[Array, "cout cin ... 2"]
    num_spatial_dims: int = eqx.field(static=True)
    modes: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        modes: int,
        *,
        key: PRNGKeyArray,
    ):
        shape = (out_channels, in_channels) + (2 * modes,) * (num_spatial_dims - 1)
        shape += (modes,)
        scale = 1.0 / (in_channels * out_channels)
        self.weights = scale * jr.uniform(key, shape + (2,))
        self.num_spatial_dims = num_spatial_dims
        self.modes = modes

    def complex_weights(self) -> Complex[Array, "cout cin ..."]:
        return jax.lax.complex(self.weights[..., 0], self.weights[..., 1])

    def __call__(self, v: Array) -> Array:
        """`v (C_in, *N)` → `(C_out, *N)`."""
        n = v.shape[-1]
        if n < 2 * self.modes:
            raise ValueError(
                f"A grid of {n} points resolves fewer than {self.modes} modes; use "
                f"at least {2 * self.modes} points or fewer modes."
            )
        axes = tuple(range(1, v.ndim))
        spectrum = jnp.fft.rfftn(v, axes=axes)
        index = (slice(None), *np.ix_(*_mode_indices(n, self.modes, v.ndim - 1)))
        kept = spectrum[index]
        weights = self.complex_weights().astype(spectrum.dtype)
        mixed = jnp.einsum("oi...,i...->o...", weights, kept)
        out = jnp.zeros((weights.shape[0],) + spectrum.shape[1:], spectrum.dtype)
        out = out.at[index].set(mixed)
        return jnp.fft.irfftn(out, s=v.shape[1:], axes=axes).astype(v.dtype)


class FNO(AbstractOperator):
    """Fourier Neural Operator (Li et al., ICLR 2021), 1D–3D, channels first.

    `u (C_in, *N)` [+ periodic grid features when `grid_features`] → pointwise
    lift to `width` → `num_layers` × `σ(W v + b + SpectralConv(v))` (no activation
    after the last) → pointwise projection through `width` hidden units to
    `out_channels`. σ is GELU. Weights live on Fourier modes and pointwise maps, so
    the same operator runs on any grid with at least `2 * modes` points per axis.

    **Arguments:**

    - `num_spatial_dims`, `in_channels`, `out_channels`.
    - `modes`: kept Fourier modes per axis (`|k| < modes`); `width`: channels of the
        hidden layers; `num_layers`.
    - `grid_features`: append `sin(2πx/L)`, `cos(2πx/L)` per axis as input channels
        (see `append_grid`).
    - `key`: keyword-only PRNG key.

    **Call:** `fno(u, t=0.0, *, key=None)`; `t` and `key` are unused (autonomous and
    deterministic).
    """

    lift: eqx.nn.Conv
    spectral: tuple[SpectralConv, ...]
    pointwise: tuple[eqx.nn.Conv, ...]
    project: tuple[eqx.nn.Conv, eqx.nn.Conv]
    activation: Callable = eqx.field(static=True)
    num_spatial_dims: int = eqx.field(static=True)
    grid_features: bool = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        modes: int = 12,
        width: int = 32,
        num_layers: int = 4,
        grid_features: bool = True,
        key: PRNGKeyArray,
    ):
        check_sizes(
            num_spatial_dims, in_channels, out_channels, modes, width, num_layers
        )
        d = num_spatial_dims
        keys = jr.split(key, 2 * num_layers + 3)
        lifted = in_channels + 2 * d * grid_features
        self.lift = eqx.nn.Conv(d, lifted, width, 1, key=keys[0])
        self.spectral = tuple(
            SpectralConv(d, width, width, modes, key=k)
            for k in keys[1 : num_layers + 1]
        )
        self.pointwise = tuple(
            eqx.nn.Conv(d, width, width, 1, key=k)
            for k in keys[num_layers + 1 : 2 * num_layers + 1]
        )
        self.project = (
            eqx.nn.Conv(d, width, width, 1, key=keys[-2]),
            eqx.nn.Conv(d, width, out_channels, 1, key=keys[-1]),
        )
        self.activation = jax.nn.gelu
        self.num_spatial_dims = d
        self.grid_features = grid_features

    def __call__(
        self, u: Field, t: ScalarLike = 0.0, *, key: PRNGKeyArray | None = None
    ) -> OutField:
        del t, key
        check_state(u, self.num_spatial_dims, "FNO")
        v = self.lift(append_grid(u) if self.grid_features else u)
        for i, (spectral, pointwise) in enumerate(
            zip(self.spectral, self.pointwise, strict=True)
        ):
            v = pointwise(v) + spectral(v)
            if i < len(self.spectral) - 1:
                v = self.activation(v)
        return self.project[1](self.activation(self.project[0](v)))
