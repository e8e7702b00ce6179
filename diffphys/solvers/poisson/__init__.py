"""Poisson and steady diffusion problems `-∇·(κ ∇u) = f`.

Holds the finite-difference diffusion operator (`DiffusionOperator`, used by the
implicit layers' tests and the demo); the deep conjugate direction (DCDM) solver and
its exact solutions will live here too.
"""

from ._operator import DiffusionOperator as DiffusionOperator
