import equinox as eqx
import jax
import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike, Field
from .._spectral import dealiasing_mask, wavenumbers


def check_grid(num_spatial_dims, domain_extent, num_points, dt):
    if num_spatial_dims not in (1, 2, 3):
        raise ValueError(
            f"`num_spatial_dims` must be 1, 2 or 3, got {num_spatial_dims}."
        )
    if domain_extent <= 0 or num_points < 4 or dt <= 0:
        raise ValueError(
            "Need domain_extent > 0, num_points >= 4 and dt > 0; got "
            f"{domain_extent}, {num_points}, {dt}."
        )


def check_viscosity(viscosity: ArrayLike, allow_zero: bool) -> Array:
    """The viscosity as an array; refuses a negative (concrete) value."""
    viscosity = jnp.asarray(viscosity)
    if jnp.ndim(viscosity) != 0:
        raise ValueError(
            "`viscosity` must be a scalar; for a batch of viscosities vmap over the "
            "constructor: eqx.filter_vmap(lambda nu: Stepper(..., viscosity=nu))(nus)."
        )
    if not isinstance(viscosity, jax.core.Tracer):
        value = float(viscosity)
        if value < 0 or (value == 0 and not allow_zero):
            raise ValueError(
                f"`viscosity` must be {'>= 0' if allow_zero else '> 0'}, got {value}."
            )
    return viscosity


def num_channels(num_spatial_dims: int) -> int:
    """Burgers is scalar in 1D and a d-component velocity in d >= 2 dimensions."""
    return 1 if num_spatial_dims == 1 else num_spatial_dims


def check_state(u: Field, num_spatial_dims: int, num_points: int):
    expected = (num_channels(num_spatial_dims),) + (num_points,) * num_spatial_dims
    if u.shape != expected:
        raise ValueError(
            f"The state must have shape {expected} (channels first, unbatched; use "
            f"jax.vmap for batches), got {u.shape}."
        )


class SpectralBurgersTerms(eqx.Module):
    """The dealiased nonlinear term of Burgers in Fourier space, on rfft coefficients.

    1D: `-(u²/2)_x` (conservative form: the mean is exactly conserved). d >= 2 (vector
    Burgers, `d` channels): `-(u·∇)u`, the convective form. The 2/3-style mask is
    applied to the state before the inverse transform and to the product after the
    forward one.
    """

    num_spatial_dims: int = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    ks: list[Array]
    mask: Array

    def __init__(
        self, num_spatial_dims, domain_extent, num_points, dealiasing_fraction
    ):
        self.num_spatial_dims = num_spatial_dims
        self.num_points = num_points
        # A leading channel axis, to broadcast against rfft coefficients (C, *K).
        ks = wavenumbers(num_spatial_dims, domain_extent, num_points)
        self.ks = [k[None] for k in ks]
        mask = dealiasing_mask(num_spatial_dims, num_points, dealiasing_fraction)
        self.mask = jnp.broadcast_to(
            mask, jnp.broadcast_shapes(*[k.shape for k in ks])
        )[None]

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(range(1, self.num_spatial_dims + 1))

    def forward(self, u):
        return jnp.fft.rfftn(u, axes=self.axes)

    def inverse(self, v):
        shape = (self.num_points,) * self.num_spatial_dims
        return jnp.fft.irfftn(v, s=shape, axes=self.axes)

    def nonlinear(self, v):
        v = jnp.where(self.mask, v, 0)
        u = self.inverse(v)
        ks = [k.astype(v.dtype) for k in self.ks]  # complex, as v
        if self.num_spatial_dims == 1:
            out = -0.5j * ks[0] * self.forward(u**2)
        else:
            # (u·∇)u_i = Σ_j u_j ∂_j u_i, derivatives spectrally.
            grads = [self.inverse(1j * k * v) for k in ks]
            conv = sum(u[j : j + 1] * grads[j] for j in range(self.num_spatial_dims))
            out = -self.forward(conv)
        return jnp.where(self.mask, out, 0)

    def laplacian_symbol(self):
        return -sum(k**2 for k in self.ks)


def forcing_at(forcing, t, like: Array) -> Array | None:
    """The forcing at time `t`; `forcing` is `None`, a field, or `f(t) -> field`."""
    if forcing is None:
        return None
    value = forcing(t) if callable(forcing) else forcing
    if jnp.shape(value) != like.shape:
        raise ValueError(
            f"The forcing must be a field of the state's shape {like.shape}, got "
            f"{jnp.shape(value)}."
        )
    return jnp.asarray(value, like.dtype)
