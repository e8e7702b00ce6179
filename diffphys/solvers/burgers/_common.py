from ..._custom_types import Array
from .._spectral import SpectralGrid


def num_channels(num_spatial_dims: int) -> int:
    """Burgers is scalar in 1D and a d-component velocity in d >= 2 dimensions."""
    return 1 if num_spatial_dims == 1 else num_spatial_dims


def nonlinear(grid: SpectralGrid, v: Array) -> Array:
    """The dealiased nonlinear term of Burgers in Fourier space, on rfft coefficients.

    1D: `-(u²/2)_x` (conservative form: the mean is exactly conserved). d >= 2 (vector
    Burgers, `d` channels): `-(u·∇)u`, the convective form. The mask is applied to the
    state before the inverse transform and to the product after the forward one.
    """
    v = grid.dealias(v)
    u = grid.inverse(v)
    ks = grid.wavenumbers(v)
    if grid.num_spatial_dims == 1:
        out = -0.5j * ks[0] * grid.forward(u**2)
    else:
        # (u·∇)u_i = Σ_j u_j ∂_j u_i, derivatives spectrally.
        grads = [grid.inverse(1j * k * v) for k in ks]
        conv = sum(u[j : j + 1] * grads[j] for j in range(grid.num_spatial_dims))
        out = -grid.forward(conv)
    return grid.dealias(out)
