"""Poisson and steady diffusion problems `-∇·(κ ∇u) = f`.

Holds the finite-difference diffusion operator and its exact solutions; the deep
conjugate direction (DCDM) solver will live here too.
"""

from ._operator import DiffusionOperator as DiffusionOperator
