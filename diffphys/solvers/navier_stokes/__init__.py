"""Incompressible 2D Navier–Stokes in vorticity form on a periodic domain, an
instance of the semi-linear spectral engine; `exact` holds the Taylor–Green vortex
and laminar Kolmogorov flow."""

from . import exact as exact
from ._vorticity import (
    kolmogorov_forcing as kolmogorov_forcing,
    NavierStokesVorticity as NavierStokesVorticity,
)
