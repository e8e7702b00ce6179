"""Neural operators (FNO, DyMixOp, JAWS, IGNS).

Each is an `equinox.Module` called as `op(u, *, key=None) -> u_next` on an unbatched,
channels-first field `(C, *N)`, so it can stand wherever a solver's stepper does.
Nothing lives here yet; the operators issue fills it.
"""
