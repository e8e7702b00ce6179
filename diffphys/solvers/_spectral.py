"""Shared pieces of periodic pseudo-spectral solvers: wavenumbers, dealiasing masks and
ETDRK coefficients by the Kassam–Trefethen contour integral."""

import jax.lax as lax
import jax.numpy as jnp


def wavenumbers(num_spatial_dims: int, domain_extent: float, num_points: int):
    """Angular wavenumbers on the rfft grid, one array per axis, shaped to broadcast
    over `(*N)` with the last axis halved (`N // 2 + 1`)."""
    k_full = 2 * jnp.pi * jnp.fft.fftfreq(num_points, domain_extent / num_points)
    k_half = 2 * jnp.pi * jnp.fft.rfftfreq(num_points, domain_extent / num_points)
    ks = []
    for axis in range(num_spatial_dims):
        k = k_half if axis == num_spatial_dims - 1 else k_full
        shape = [1] * num_spatial_dims
        shape[axis] = -1
        ks.append(k.reshape(shape))
    return ks


def dealiasing_mask(num_spatial_dims: int, num_points: int, fraction: float):
    """True for modes kept: |index| below `fraction` of the highest resolved one."""
    # Integer mode indices as floats (fftfreq with spacing 1/N).
    index_full = jnp.abs(jnp.fft.fftfreq(num_points, 1 / num_points))
    index_half = jnp.fft.rfftfreq(num_points, 1 / num_points)
    limit = fraction * (num_points // 2)
    mask = jnp.ones((), bool)
    for axis in range(num_spatial_dims):
        index = index_half if axis == num_spatial_dims - 1 else index_full
        shape = [1] * num_spatial_dims
        shape[axis] = -1
        mask = mask & (index.reshape(shape) <= limit)
    return mask


def phi_functions(z, num_circle_points: int, circle_radius: float, max_order: int):
    """`φ_1(z) ... φ_max_order(z)` (`φ_0 = e^z`, `φ_{j+1} = (φ_j - 1/j!) / z`) by the
    mean over `num_circle_points` points on a circle of radius `circle_radius` around
    each `z` (Kassam & Trefethen 2005), free of cancellation near `z = 0`. `z` real."""
    m = jnp.arange(1, num_circle_points + 1, dtype=z.dtype)
    angle = jnp.pi * (m - 0.5) / num_circle_points
    roots = circle_radius * lax.complex(jnp.cos(angle), jnp.sin(angle))
    zc = z.astype(roots.dtype)[..., None] + roots.reshape((1,) * z.ndim + (-1,))
    phis, phi, factorial = [], jnp.exp(zc), 1.0
    for j in range(1, max_order + 1):
        phi = (phi - 1.0 / factorial) / zc
        factorial *= j
        phis.append(jnp.mean(phi, axis=-1).real.astype(z.dtype))
    return phis
