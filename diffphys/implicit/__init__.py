"""Implicit-differentiation layers: `linear_solve`, `root_find`, `fixed_point`.

Each layer runs an iterative solver forward and, by default (`ImplicitAdjoint`),
differentiates the result by the implicit function theorem: one adjoint linear solve
per gradient, whatever the number of forward iterations. `UnrolledAdjoint`
backpropagates through the iterations instead, for comparison. Every solver of
diffphys that iterates (the implicit steppers' Newton solves, the Poisson solves)
builds on these layers rather than differentiating its own iterations; the explicit
steppers have no iterations and are differentiated by backprop through their steps
(`dp.solvers.rollout(..., checkpoint=True)` to checkpoint them).
"""

from ._adjoint import (
    AbstractAdjoint as AbstractAdjoint,
    ImplicitAdjoint as ImplicitAdjoint,
    UnrolledAdjoint as UnrolledAdjoint,
)
from ._fixed_point import (
    AbstractFixedPointSolver as AbstractFixedPointSolver,
    Anderson as Anderson,
    fixed_point as fixed_point,
    FixedPointIteration as FixedPointIteration,
)
from ._jaxopt import Jaxopt as Jaxopt
from ._linear_solve import (
    AbstractIterativeSolver as AbstractIterativeSolver,
    CG as CG,
    Jacobi as Jacobi,
    linear_solve as linear_solve,
    PCG as PCG,
)
from ._root_find import (
    AbstractRootFinder as AbstractRootFinder,
    Newton as Newton,
    root_find as root_find,
)
