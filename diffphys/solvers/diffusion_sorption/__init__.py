"""Diffusion–sorption in 1D (PDEBench's benchmark): Fickian diffusion retarded by a
Freundlich sorption isotherm, by conservative finite volumes and implicit steps;
`exact` builds manufactured solutions for its validation."""

from . import exact as exact
from ._diffusion_sorption import DiffusionSorption as DiffusionSorption
