"""Neural operators (FNO now; DyMixOp, JAWS and IGNS to come).

Each is an `equinox.Module` called as `op(u, *, key=None) -> u_next` on an unbatched,
channels-first field `(C, *N)`, so it can stand wherever a solver's stepper does.
"""

from ._fno import (
    AbstractOperator as AbstractOperator,
    FNO as FNO,
    SpectralConv as SpectralConv,
)
