"""What a run trains and rolls out: the network it starts from, the coarse and
reference solvers it meets, and its one-frame step (shared by training, validation
and evaluation)."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .. import constraints, operators
from ..datasets import GenerationConfig
from ..evaluation import AbstractModel, parse_model
from ..solvers import rollout
from ..solvers.burgers import BurgersImplicit
from ._config import TrainConfig


def build_model(train: TrainConfig, data: GenerationConfig, *, tau: float, key=None):
    """The trainable operator a run starts from (or the skeleton a checkpoint is
    read into): network, `Residual` wrapper, `JAWS` wrapper."""
    sc = data.scenario_obj
    sc.require_grid(f"the grid operator {train.model!r}")
    if sc.steady:
        train.check_steady()
    d, c = sc.num_spatial_dims, sc.num_channels
    if data.num_points < 2 * train.modes:
        raise ValueError(
            f"`modes={train.modes}` needs at least {2 * train.modes} grid points; the "
            f"dataset has {data.num_points}. Use `modes` <= {data.num_points // 2}."
        )
    key = jr.key(train.seed) if key is None else key
    knet, kjaws = jr.split(key)
    common = dict(modes=train.modes, width=train.width, num_layers=train.num_layers)
    if sc.steady:  # the map inputs -> solution, from scratch (no residual)
        return operators.FNO(d, sc.num_constant_channels, c, **common, key=knet)
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
                f"`constraint` keeps the total mass from frame to frame, which holds "
                f"on closed domains only; scenario {sc.name!r} has {sc.boundary} "
                "boundaries (mass enters and leaves). Train without `constraint`."
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
                f"{data.scenario!r}. Use `solver='solver:{data.scenario}'`."
            )
        low = data.scenario_obj.sampler("nu", dict(data.params)["nu"]).bounds[0]
        if not low > 0:
            raise ValueError(
                "The implicit Burgers solver needs ν > 0; the dataset draws ν down "
                f"to {low}. Use `solver='solver:{data.scenario}'`."
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


def make_step(model, train: TrainConfig, data: GenerationConfig):
    """`fn(params) -> step` with `step(u) -> (u_next, model_input)`: the trained
    model's one-frame step on `data`'s grid (for `correction`, the coarse solver
    then the network's additive correction)."""
    if train.parsed_mode.kind != "correction":
        return lambda params: lambda u: (model(u), u)
    solver = coarse_solver(train.solver, data)

    def make(params):
        coarse = solver(params)

        def step(u):
            v = coarse(u)
            return v + model(v), v

        return step

    return make


class TrainedModel(AbstractModel):
    """A trained run as an evaluation model (`dp.evaluation.evaluate` or
    `diffphys evaluate --model RUN_DIR`): the network's one-frame step, with the
    coarse solver in front for `correction` runs. It runs on any dataset of the
    same PDE, channels and frame interval (the grid may differ)."""

    model: eqx.Module
    train: TrainConfig = eqx.field(static=True)
    trained_on: GenerationConfig = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def build(self, config, num_steps):
        a, b = self.trained_on, config
        a.scenario_obj.check_compatible(self.name, b.scenario_obj)
        if not np.isclose(a.frame_interval, b.frame_interval, rtol=1e-9):
            raise ValueError(
                f"Model {self.name!r} steps {a.frame_interval:g} in time; the "
                f"dataset's frames are {b.frame_interval:g} apart."
            )
        if a.domain_extent != b.domain_extent:
            raise ValueError(
                f"Model {self.name!r} was trained on a domain of length "
                f"{a.domain_extent:g}; the dataset's is {b.domain_extent:g}."
            )
        if config.scenario_obj.steady:
            return lambda inputs, params: self.model(inputs)[None]
        make = make_step(self.model, self.train, config)

        def fn(u0, params):
            step = make(params)
            return rollout(lambda u: step(u)[0], u0, num_steps, throw=False)

        return fn
