"""1D scalar hyperbolic conservation laws `u_t + f(u)_x = 0` with inflow/outflow or
periodic ends (`ConservationLaw`), and their exact solutions (`exact`)."""

from . import exact as exact
from ._conservation_law import ConservationLaw as ConservationLaw
