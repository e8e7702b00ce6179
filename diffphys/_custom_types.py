"""jaxtyping aliases shared by every area of diffphys.

Fields are unbatched and channels-first, `(C, *N)`; trajectories are `(T, C, *N)`.
"""

from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree, Shaped


Scalar = Float[Array, ""]
ScalarLike = float | Float[ArrayLike, ""]
IntScalar = Int[Array, ""]
BoolScalar = Bool[Array, ""]
Field = Float[Array, "C *N"]
# A state as a caller may pass it: the steppers promote integer and boolean states
# to the default float dtype (`solvers._grid.float_state`).
FieldLike = Shaped[ArrayLike, "C *N"]
# An operator output: same grid as its input `Field`, possibly other channels.
OutField = Float[Array, "C_out *N"]
Trajectory = Float[Array, "T C *N"]
SpatialField = Float[Array, "*N"]

__all__ = [
    "Array",
    "ArrayLike",
    "BoolScalar",
    "Field",
    "FieldLike",
    "Float",
    "Int",
    "IntScalar",
    "PyTree",
    "Scalar",
    "ScalarLike",
    "Shaped",
    "SpatialField",
    "Trajectory",
]
