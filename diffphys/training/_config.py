import dataclasses
import math

import equinox as eqx

from .. import constraints
from ._losses import get_loss
from ._modes import Mode, parse_mode


MODELS = ("fno", "dymixop")
_RENAMED = {"steps": "num_train_steps", "valid_steps": "valid_num_steps"}


class TrainConfig(eqx.Module):
    """Everything that determines a training run (with the dataset it reads). An
    all-static `eqx.Module`, like `dp.datasets.GenerationConfig`; every option is
    checked when it is built (`__check_init__`), and `diffphys train`'s option
    defaults are these fields' defaults.

    - `model`: `fno` or `dymixop`; `width`, `modes`, `num_layers`; `residual`: the
        network predicts the increment `u_{n+1} − u_n` (not used by `correction`,
        whose network already adds to the solver's step, nor on a steady dataset,
        whose map `inputs -> solution` has no previous state: there mode `one`,
        model `fno`, no penalty or constraint; see `check_steady`).
    - `mode`: `one`, `sup-K`, `div-K`, `correction[-K]` (see `dp.training`);
        `tbptt`: stop gradients between states every this many steps.
    - `solver`: the coarse solver of `correction`: `implicit` (Crank–Nicolson
        `BurgersImplicit` on the data grid, one step per frame), `implicit:substeps=K`,
        or a baseline spec such as `solver:burgers:num_points=64`.
    - `loss`: `mse`, `relative_mse` or `nrmse`.
    - Optimiser: AdamW with `learning_rate` peak, linear warmup over `warmup_steps`
        (default 5 % of `num_train_steps`) then cosine decay to 1 % of the peak;
        global-norm clipping at `clip_norm` (None: off); `weight_decay`.
    - `jaws`: wrap the network in `dp.operators.JAWS` and add `jaws_weight` × its
        penalty at the true input (`jaws_at="truth"`) or at the last model input of
        the unrolled window (`"rollout"`), with `jaws_probes` JVP probes and floor
        `jaws_s_min`. `spectral_penalty`: weight of the global power-iteration
        baseline `max(σ_max − 1, 0)²` (0: off).
    - `constraint`: `none`, `hard` or `probconserv`: wrap the model in
        `dp.constraints.MassConserving`, so every predicted frame keeps its input's
        mass and training runs through the constraint (closed domains only;
        `probconserv` uses the JAWS log-variance head, so it needs `jaws`).
    - `num_train_steps`: optimiser steps (the CLI's `--steps`).
    - Validation every `validate_every` optimiser steps (default a tenth of the
        run): mean nRMSE of rollouts of `valid_num_steps` frames (default
        min(50, frames)) of the validation split; the best model is kept as
        `best.eqx`.
    """

    model: str = eqx.field(static=True, default="fno")
    mode: str = eqx.field(static=True, default="one")
    num_train_steps: int = eqx.field(static=True, default=1000)
    batch_size: int = eqx.field(static=True, default=16)
    width: int = eqx.field(static=True, default=32)
    modes: int = eqx.field(static=True, default=12)
    num_layers: int = eqx.field(static=True, default=4)
    residual: bool = eqx.field(static=True, default=True)
    loss: str = eqx.field(static=True, default="mse")
    learning_rate: float = eqx.field(static=True, default=1e-3)
    warmup_steps: int | None = eqx.field(static=True, default=None)
    weight_decay: float = eqx.field(static=True, default=0.0)
    clip_norm: float | None = eqx.field(static=True, default=1.0)
    tbptt: int | None = eqx.field(static=True, default=None)
    solver: str = eqx.field(static=True, default="implicit")
    jaws: bool = eqx.field(static=True, default=False)
    jaws_weight: float = eqx.field(static=True, default=1e-2)
    jaws_probes: int = eqx.field(static=True, default=1)
    jaws_at: str = eqx.field(static=True, default="truth")
    jaws_s_min: float = eqx.field(static=True, default=-4.0)
    spectral_penalty: float = eqx.field(static=True, default=0.0)
    constraint: str = eqx.field(static=True, default="none")
    validate_every: int | None = eqx.field(static=True, default=None)
    valid_num_steps: int | None = eqx.field(static=True, default=None)
    seed: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        if self.model not in MODELS:
            raise ValueError(
                f"Unknown model {self.model!r}; choose from: {', '.join(MODELS)}."
            )
        parse_mode(self.mode)
        get_loss(self.loss)
        for name in ("num_train_steps", "batch_size", "width", "modes", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        for name in ("tbptt", "validate_every", "valid_num_steps", "jaws_probes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be >= 1, got {value}.")
        steps = self.num_train_steps
        if self.warmup_steps is not None and not 0 <= self.warmup_steps < steps:
            raise ValueError("`warmup_steps` must lie in [0, num_train_steps).")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"`learning_rate` must be > 0, got {self.learning_rate}.")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"`clip_norm` must be > 0 or None, got {self.clip_norm}.")
        for name in ("weight_decay", "jaws_weight", "spectral_penalty"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"`{name}` must be >= 0.")
        if self.constraint not in ("none",) + constraints.METHODS:
            raise ValueError(
                f"Unknown constraint {self.constraint!r}; choose none, "
                f"{', '.join(constraints.METHODS)}."
            )
        if self.constraint == "probconserv" and not self.jaws:
            raise ValueError(
                "`constraint='probconserv'` weights the correction by the model's "
                "variance: add `jaws=True` (its log-variance head), or use "
                "`constraint='hard'`."
            )
        if self.constraint != "none" and self.parsed_mode.kind == "correction":
            raise ValueError(
                "`constraint` applies to the model's own prediction; it does not "
                "combine with the correction mode."
            )
        if self.jaws_at not in ("truth", "rollout"):
            raise ValueError("`jaws_at` must be 'truth' or 'rollout'.")
        if self.jaws and self.spectral_penalty > 0:
            raise ValueError(
                "Choose one Jacobian penalty: `jaws=True` (spatially weighted) or "
                "`spectral_penalty` (global), not both."
            )

    @property
    def parsed_mode(self) -> Mode:
        return parse_mode(self.mode)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        # Runs written before the rename of the step counts.
        data = {_RENAMED.get(k, k): v for k, v in data.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown training options: {sorted(unknown)}.")
        return cls(**data)

    def resolved(self, num_frames: int, *, steady: bool = False) -> dict:
        """Defaults that depend on the run length or on the data, filled in (a
        steady scenario is validated on its one solve)."""
        return {
            "warmup_steps": self.warmup_steps
            if self.warmup_steps is not None
            else self.num_train_steps // 20,
            "validate_every": self.validate_every or max(1, self.num_train_steps // 10),
            "valid_num_steps": 1
            if steady
            else min(self.valid_num_steps or 50, num_frames - 1),
        }

    def check_steady(self) -> None:
        """Refuse what a steady map `inputs -> solution` (Darcy) cannot be trained
        with: a rollout mode, the time-stepping DyMixOp, Jacobian penalties and
        mass constraints, which are about rollouts."""
        problems = []
        if self.parsed_mode.kind != "one":
            problems.append(f"mode={self.mode!r} (use 'one')")
        if self.model != "fno":
            problems.append(
                f"model={self.model!r} (a time-stepping operator; use 'fno')"
            )
        if self.jaws or self.spectral_penalty > 0:
            problems.append("a Jacobian penalty (jaws, spectral_penalty)")
        if self.constraint != "none":
            problems.append(f"constraint={self.constraint!r}")
        if problems:
            raise ValueError(
                "The dataset is steady (a map from its inputs to the solution): "
                f"train it without {'; '.join(problems)}."
            )
