"""Neural operators: FNO, DyMixOp, the JAWS-style Jacobian-weighting wrapper.

Each is a final subclass of `AbstractOperator`, called as
`op(u, t=0.0, *, key=None) -> u_next` on an unbatched, channels-first field `(C, *N)`
(the steppers' call protocol; the time may be ignored), so it can stand wherever a
solver's stepper does.

- `FNO` (Li et al. 2021) and its `SpectralConv`.
- `DyMixOp` (Lai, Chen & Xu 2025) with `LGMLayer`, `LearnedStencil` and
  `structure_change_coefficient` (its τ).
- `JAWS` (reconstruction from the abstract of Nie & Suzuki 2026): a learned
  log-variance `s(x)` weighting per-location Jacobian row norms
  (`jacobian_row_norms`, JVP probes); `spectral_norm_penalty` is the global baseline.
- `Residual(op)`: `u + op(u)`; `count_parameters`.
"""

from ._base import AbstractOperator as AbstractOperator, apply_model as apply_model
from ._dymixop import (
    DyMixOp as DyMixOp,
    LearnedStencil as LearnedStencil,
    LGMLayer as LGMLayer,
    structure_change_coefficient as structure_change_coefficient,
)
from ._fno import (
    count_parameters as count_parameters,
    FNO as FNO,
    SpectralConv as SpectralConv,
)
from ._jaws import (
    jacobian_row_norms as jacobian_row_norms,
    JAWS as JAWS,
    rademacher_probes as rademacher_probes,
    Residual as Residual,
    spectral_norm_penalty as spectral_norm_penalty,
)
