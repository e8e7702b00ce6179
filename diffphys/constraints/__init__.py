"""Conservation-enforcing modules and their metrics.

- `ProbConserv(G, noise=σ_G)`: the Gaussian update of a probabilistic prediction
    (`Diagonal`, `Full` or `Ensemble` covariance) on a linear constraint `G u = b`
    (Hansen et al., ICML 2023).
- `HardProjection(G)`: the Euclidean projection (its `Σ = I` special case).
- `MassConserving(model, constraint)`: wraps any stepper so its output keeps the
    input's mass (end-to-end training through the constraint).
- `conservation_error(u, G, b)`, `mass_weights(x, rule=...)`.
"""

from ._probconserv import (
    AbstractConstraint as AbstractConstraint,
    conservation_error as conservation_error,
    Diagonal as Diagonal,
    Ensemble as Ensemble,
    Full as Full,
    HardProjection as HardProjection,
    mass_weights as mass_weights,
    ProbConserv as ProbConserv,
)
from ._wrapper import MassConserving as MassConserving, METHODS as METHODS
