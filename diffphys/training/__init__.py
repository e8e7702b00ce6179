"""Training: where models meet solvers.

- Losses: `mse`, `relative_mse`, `nrmse`.
- Modes (`parse_mode`, `unroll`): `one`, `sup-K` (unrolled, optional truncated
  backpropagation), `div-K` (diverted chain: the differentiable reference solver on
  the model's own states), `correction[-K]` (solver-in-the-loop: the network
  corrects a coarse differentiable solver's step; gradients through implicit steps
  by the implicit function theorem).
- `TrainConfig` and `train(config, DATA_DIR, RUN_DIR) -> TrainResult`: AdamW with
  warmup-cosine schedule and clipping, validation-split model selection,
  checkpoints with exact resume, JSONL logs, batches sharded over local devices
  (`diffphys train`).
- `load_run(RUN_DIR)` → `TrainedModel` for `dp.evaluation.evaluate`.
"""

from ._config import TrainConfig as TrainConfig
from ._losses import mse as mse, nrmse as nrmse, relative_mse as relative_mse
from ._model import (
    build_model as build_model,
    make_step as make_step,
    TrainedModel as TrainedModel,
)
from ._modes import Mode as Mode, parse_mode as parse_mode, unroll as unroll
from ._run import load_run as load_run, read_run as read_run
from ._trainer import train as train, TrainResult as TrainResult
