"""Poisson and steady diffusion problems `-∇·(κ ∇u) = f`.

- `DiffusionOperator`: the node-based finite-difference diffusion operator with
  zero Dirichlet boundaries (the implicit layers' tests, the demo).
- `FluidPoisson`: the pressure operator of an incompressible-flow projection on a
  cell grid of `FLUID`, `SOLID` and `AIR` cells, 2D and 3D.
- `Multigrid`: a geometric multigrid V-cycle, the preconditioner of
  `dp.implicit.PCG` for `FluidPoisson` (MG-PCG).
- `DCDM`, `DCDMNet`, `dcdm_loss`: the deep conjugate direction method (Kaneda et al.
  2023), its network and its scale-invariant loss; `ritz_pairs` and
  `ritz_training_data` make its Lanczos training data; `train_dcdm`
  (`diffphys train-dcdm`) trains a network into a run folder, `load_dcdm_network`
  reads it back.
"""

from ._dcdm import DCDM as DCDM, dcdm_loss as dcdm_loss, DCDMNet as DCDMNet
from ._fluid import (
    AIR as AIR,
    components as components,
    FLUID as FLUID,
    FluidPoisson as FluidPoisson,
    SOLID as SOLID,
)
from ._lanczos import ritz_pairs as ritz_pairs, ritz_training_data as ritz_training_data
from ._multigrid import Multigrid as Multigrid
from ._operator import DiffusionOperator as DiffusionOperator
from ._train import (
    DCDMTrainConfig as DCDMTrainConfig,
    load_dcdm_network as load_dcdm_network,
    train_dcdm as train_dcdm,
)
