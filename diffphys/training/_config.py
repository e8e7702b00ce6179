import dataclasses
import math

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr

from .. import constraints, operators
from ..datasets import GenerationConfig
from ..evaluation import parse_model
from ..solvers import rollout
from ..solvers.burgers import BurgersImplicit
from ._losses import get_loss
from ._modes import Mode, parse_mode


MODELS = ("fno", "dymixop")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (with the dataset it reads).

    - `model`: `fno` or `dymixop`; `width`, `modes`, `num_layers`; `residual`: the
        network predicts the increment `u_{n+1} − u_n` (not used by `correction`,
        whose network already adds to the solver's step).
    - `mode`: `one`, `sup-K`, `div-K`, `correction[-K]` (see `dp.training`);
        `tbptt`: stop gradients between states every this many steps.
    - `solver`: the coarse solver of `correction`: `implicit` (Crank–Nicolson
        `BurgersImplicit` on the data grid, one step per frame), `implicit:substeps=K`,
        or a baseline spec such as `solver:burgers:num_points=64`.
    - `loss`: `mse`, `relative_mse` or `nrmse`.
    - Optimiser: AdamW with `learning_rate` peak, linear warmup over `warmup_steps`
        (default 5 % of `steps`) then cosine decay to 1 % of the peak; global-norm
        clipping at `clip_norm` (None: off); `weight_decay`.
    - `jaws`: wrap the network in `dp.operators.JAWS` and add `jaws_weight` × its
        penalty at the true input (`jaws_at="truth"`) or at the last model input of
        the unrolled window (`"rollout"`), with `jaws_probes` JVP probes and floor
        `jaws_s_min`. `spectral_penalty`: weight of the global power-iteration
        baseline `max(σ_max − 1, 0)²` (0: off).
    - `constraint`: `none`, `hard` or `probconserv`: wrap the model in
        `dp.constraints.MassConserving`, so every predicted frame keeps its input's
        mass and training runs through the constraint (closed domains only;
        `probconserv` uses the JAWS log-variance head, so it needs `jaws`).
    - Validation every `validate_every` steps (default a tenth of the run): mean
        nRMSE of `valid_steps`-frame rollouts (default min(50, frames)) of the
        validation split; the best model is kept as `best.eqx`.
    """

    model: str = "fno"
    mode: str = "one"
    steps: int = 1000
    batch_size: int = 16
    width: int = 32
    modes: int = 12
    num_layers: int = 4
    residual: bool = True
    loss: str = "mse"
    learning_rate: float = 1e-3
    warmup_steps: int | None = None
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    tbptt: int | None = None
    solver: str = "implicit"
    jaws: bool = False
    jaws_weight: float = 1e-2
    jaws_probes: int = 1
    jaws_at: str = "truth"
    jaws_s_min: float = -4.0
    spectral_penalty: float = 0.0
    constraint: str = "none"
    validate_every: int | None = None
    valid_steps: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(
                f"Unknown model {self.model!r}; choose from: {', '.join(MODELS)}."
            )
        parse_mode(self.mode)
        get_loss(self.loss)
        for name in ("steps", "batch_size", "width", "modes", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        for name in ("tbptt", "validate_every", "valid_steps", "jaws_probes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be >= 1, got {value}.")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps < self.steps:
            raise ValueError("`warmup_steps` must lie in [0, steps).")
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
                "--constraint probconserv weights the correction by the model's "
                "variance: add --jaws (its log-variance head), or use --constraint "
                "hard."
            )
        if self.constraint != "none" and self.parsed_mode.kind == "correction":
            raise ValueError(
                "--constraint applies to the model's own prediction; it does not "
                "combine with the correction mode."
            )
        if self.jaws_at not in ("truth", "rollout"):
            raise ValueError("`jaws_at` must be 'truth' or 'rollout'.")
        if self.jaws and self.spectral_penalty > 0:
            raise ValueError(
                "Choose one Jacobian penalty: --jaws (spatially weighted) or "
                "--spectral-penalty (global), not both."
            )

    @property
    def parsed_mode(self) -> Mode:
        return parse_mode(self.mode)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown training options: {sorted(unknown)}.")
        return cls(**data)

    def resolved(self, num_frames: int) -> dict:
        """Defaults that depend on the run length or on the data, filled in."""
        return {
            "warmup_steps": self.warmup_steps
            if self.warmup_steps is not None
            else self.steps // 20,
            "validate_every": self.validate_every or max(1, self.steps // 10),
            "valid_steps": min(self.valid_steps or 50, num_frames - 1),
        }


def build_model(train: TrainConfig, data: GenerationConfig, *, tau: float, key=None):
    """The trainable operator a run starts from (or the skeleton a checkpoint is
    read into): network, `Residual` wrapper, `JAWS` wrapper."""
    sc = data.scenario_obj
    d, c = sc.num_spatial_dims, sc.num_channels
    if data.num_points < 2 * train.modes:
        raise ValueError(
            f"--modes {train.modes} needs at least {2 * train.modes} grid points; the "
            f"dataset has {data.num_points}. Use --modes <= {data.num_points // 2}."
        )
    key = jr.key(train.seed) if key is None else key
    knet, kjaws = jr.split(key)
    common = dict(modes=train.modes, width=train.width, num_layers=train.num_layers)
    if train.model == "fno":
        net = operators.FNO(d, c, c, **common, key=knet)
    else:
        net = operators.DyMixOp(
            d, c, c, **common, tau=tau, domain_extent=data.domain_extent, key=knet
        )
    correction = train.parsed_mode.kind == "correction"
    if train.residual or correction:
        # An increment (or a correction) starts at zero: the untrained model is the
        # identity (or the coarse solver), not a random map.
        last = (lambda m: m.project[1]) if train.model == "fno" else lambda m: m.project
        net = eqx.tree_at(
            lambda m: (last(m).weight, last(m).bias),
            net,
            (jnp.zeros_like(last(net).weight), jnp.zeros_like(last(net).bias)),
        )
    if train.residual and not correction:
        net = operators.Residual(net)
    if train.jaws:
        net = operators.JAWS(net, d, c, s_min=train.jaws_s_min, key=kjaws)
    if train.constraint != "none":
        if sc.boundary != "periodic":
            raise ValueError(
                f"--constraint keeps the total mass from frame to frame, which holds "
                f"on closed domains only; scenario {sc.name!r} has {sc.boundary} "
                "boundaries (mass enters and leaves). Train without --constraint."
            )
        net = constraints.MassConserving(net, train.constraint)
    return net


def coarse_solver(spec: str, data: GenerationConfig):
    """`fn(params) -> stepper` over one frame interval of `data`, for `correction`."""
    text = spec.strip()
    if text == "implicit" or text.startswith("implicit:"):
        substeps = 1
        option = text.partition(":")[2]
        if option:
            key, _, value = option.partition("=")
            if key != "substeps" or not value.isdigit() or int(value) < 1:
                raise ValueError(
                    f"Solver spec {spec!r}: write implicit or implicit:substeps=K."
                )
            substeps = int(value)
        names = [n for n, _ in data.params]
        if not data.scenario.startswith("burgers") or names != ["nu"]:
            raise ValueError(
                f"The implicit solver is viscous Burgers; the dataset is "
                f"{data.scenario!r}. Use --solver solver:{data.scenario}."
            )
        low = data.scenario_obj.sampler("nu", dict(data.params)["nu"]).bounds[0]
        if not low > 0:
            raise ValueError(
                "The implicit Burgers solver needs ν > 0; the dataset draws ν down "
                f"to {low}. Use --solver solver:{data.scenario}."
            )
        sc = data.scenario_obj
        dt = data.frame_interval / substeps

        def make(params):
            solver = BurgersImplicit(
                sc.num_spatial_dims,
                data.domain_extent,
                data.num_points,
                dt,
                viscosity=params["nu"],
                throw=False,  # a failed step shows in the loss and the metrics
            )

            return lambda u: rollout(
                solver, u, 1, save_every=substeps, include_init=False, throw=False
            )[0]

        return make
    if text.startswith("solver:"):
        return reference_solver(data, parse_model(text))
    raise ValueError(
        f"Unknown solver spec {spec!r}; write implicit, implicit:substeps=K or "
        "solver:SCENARIO[:num_points=N,save_every=K]."
    )


def reference_solver(data: GenerationConfig, baseline=None):
    """`fn(params) -> stepper` advancing one frame interval with the dataset's own
    solver (or `baseline`, an evaluation `SolverBaseline`), differentiable."""
    baseline = parse_model(f"solver:{data.scenario}") if baseline is None else baseline
    one = baseline.build(data, 1)

    def make(params):
        return lambda u: one(u, params)[-1]

    return make
