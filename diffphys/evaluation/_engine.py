import abc
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._memory import memory_budget
from ..datasets import (
    GenerationConfig,
    get_scenario,
    open as open_split,
    steps_per_frame,
)
from ..solvers import AbstractConservativeStepper, mass_budget, rollout
from . import _metrics


def metric_notes(config: GenerationConfig) -> dict[str, str]:
    """What the domain-dependent metrics mean on this dataset (periodic or not)."""
    sc = config.scenario_obj
    names = ", ".join(sc.channel_names[c] for c in sc.conserved_channels)
    if sc.steady:
        return {
            "mass_drift": "n/a: a steady problem",
            "max_principle_violation": "n/a: a steady problem",
            "spectral": "n/a: the domain is not periodic",
        }
    if sc.boundary == "periodic":
        return {
            "mass_drift": f"|∫u(t) − ∫u(0)| of the conserved channels ({names}), "
            "closed periodic domain"
            if names
            else "n/a: the scenario declares no conserved channel",
            "max_principle_violation": "excess of max|u(t)| over max|u(0)|",
            "spectral": "PDEBench's low/mid/high Fourier bands",
        }
    budget = _has_budget(config) and bool(names)
    return {
        "mass_drift": "|mass(u(t)) − b(t)|, b the solver's boundary-flux budget "
        "(mass: ∫u, or the solver's own conserved quantity)"
        if budget
        else "n/a: open domain and no conservative stepper for a mass budget",
        "max_principle_violation": "excess of max|u(t)| over the truth's max over "
        "all times (inflow raises the bound)",
        "spectral": "n/a: the domain is not periodic",
    }


def _has_budget(config: GenerationConfig) -> bool:
    sc = config.scenario_obj
    # Traced parameters: no value to check, only the stepper's type to find.
    params = {name: jax.ShapeDtypeStruct((), float) for name, _ in config.params}
    # `filter_eval_shape`: a stepper may hold callables (time-dependent boundary
    # values), which `jax.eval_shape` cannot return.
    stepper = eqx.filter_eval_shape(
        lambda p: sc.make_stepper(
            config.domain_extent, config.num_points, config.dt, **p
        ),
        params,
    )
    return isinstance(stepper, AbstractConservativeStepper)


def resample(u: jax.Array, num_points: int) -> jax.Array:
    """Fourier-resample a periodic field `(C, *N)` to `num_points` per axis: the modes
    `|k| < min(N, num_points) / 2` are kept, the rest dropped or zero (exact for data
    band-limited below both Nyquist numbers)."""
    d, n = u.ndim - 1, u.shape[-1]
    if num_points == n:
        return u
    axes = tuple(range(1, u.ndim))
    keep = min(n, num_points) // 2
    freqs = np.arange(-keep + 1, keep)
    src = [freqs % n] * (d - 1) + [np.arange(keep)]
    dst = [freqs % num_points] * (d - 1) + [np.arange(keep)]
    spectrum = jnp.fft.rfftn(u, axes=axes)
    out = jnp.zeros(
        (u.shape[0],) + (num_points,) * (d - 1) + (num_points // 2 + 1,), spectrum.dtype
    )
    out = out.at[(slice(None), *np.ix_(*dst))].set(
        spectrum[(slice(None), *np.ix_(*src))]
    )
    scale = (num_points / n) ** d
    return (jnp.fft.irfftn(out, s=(num_points,) * d, axes=axes) * scale).astype(u.dtype)


def regrid(u: jax.Array, num_points: int, scenario, domain_extent: float) -> jax.Array:
    """`u` `(C, *N)` on `scenario`'s grid moved to `num_points` per axis: Fourier
    resampling on a periodic domain (`resample`), else linear interpolation along
    each axis between the scenario's points (cell centres, or Darcy's nodes; values
    beyond the outermost points are held constant)."""
    n = u.shape[-1]
    if num_points == n:
        return u
    if scenario.boundary == "periodic":
        return resample(u, num_points)
    src = jnp.asarray(scenario.coordinates(n, domain_extent), u.dtype)
    dst = jnp.asarray(scenario.coordinates(num_points, domain_extent), u.dtype)
    for axis in range(1, u.ndim):
        moved = jnp.moveaxis(u, axis, -1)
        flat = moved.reshape(-1, n)
        flat = jax.vmap(lambda row: jnp.interp(dst, src, row))(flat)
        u = jnp.moveaxis(flat.reshape(moved.shape[:-1] + (num_points,)), -1, axis)
    return u


class AbstractModel(eqx.Module):
    """Something to roll out: `build(config, num_steps)` returns `fn(u0, params) ->
    (num_steps + 1, C, *N)` for a dataset's `GenerationConfig` (grid, frame
    interval, parameters); `params` maps each dataset parameter to the trajectory's
    scalar value. For a steady scenario (Darcy) `u0` is the sample's inputs (its
    constant fields, `(C_c, *N)`) and `fn` returns the solution as one frame,
    `(1, C, *N)`."""

    name: eqx.AbstractVar[str]

    @abc.abstractmethod
    def build(self, config: GenerationConfig, num_steps: int) -> Callable:
        """The per-trajectory rollout function (jit- and vmap-friendly)."""


class Stepper(AbstractModel):
    """Any stepper on an unbatched `(C, *N)` state (a solver's `AbstractStepper`, a
    neural operator, a hybrid, any `u -> u_next`), applied once per saved frame of
    the dataset through `dp.solvers.rollout`."""

    stepper: Callable
    name: str = eqx.field(static=True, default="model")

    def __check_init__(self):
        if not callable(self.stepper):
            raise ValueError("A model must be callable: u (C, *N) -> u_next.")

    def build(self, config, num_steps):
        sc = config.scenario_obj

        def fn(u0, params):
            del params
            out = jax.eval_shape(self.stepper, u0)
            want = (sc.num_channels,) + u0.shape[1:] if sc.steady else u0.shape
            if out.shape != want:
                raise ValueError(
                    f"Model {self.name!r} maps a state of shape {u0.shape} to "
                    f"{out.shape}; it must give {want} (the dataset's grid "
                    f"{'and solution channels' if sc.steady else '(C, *N)'})."
                )
            if sc.steady:
                return self.stepper(u0)[None]
            return rollout(self.stepper, u0, num_steps, throw=False)

        return fn


class SolverBaseline(AbstractModel):
    """A registered scenario's own stepper as a classical baseline, optionally on a
    coarser grid (`num_points`; states are moved in and out by `regrid`: Fourier
    resampling on periodic domains, linear interpolation on others) or with fewer
    solver steps per saved frame (`save_every`, i.e. a larger dt). The trajectory's
    parameters (e.g. ν) come from the dataset. Default `save_every`: the fewest
    steps per frame within the scheme's stability limit at that grid. For a steady
    scenario, its solver on the (coarser) grid."""

    scenario: str = eqx.field(static=True)
    num_points: int | None = eqx.field(static=True)
    save_every: int | None = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(
        self,
        scenario: str,
        num_points: int | None = None,
        save_every: int | None = None,
        name: str = "",
    ):
        get_scenario(scenario)  # unknown names raise, listing the known ones
        options = [f"num_points={num_points}"] * (num_points is not None)
        options += [f"save_every={save_every}"] * (save_every is not None)
        default = ":".join(["solver", scenario] + [",".join(options)] * bool(options))
        self.scenario, self.num_points, self.save_every = (
            scenario,
            num_points,
            save_every,
        )
        self.name = name or default

    def build(self, config, num_steps):
        sc, data = get_scenario(self.scenario), config.scenario_obj
        sc.check_compatible(self.name, data)
        names = [n for n, _ in config.params]
        if sorted(sc.parameters) != sorted(names):
            raise ValueError(
                f"Model {self.name!r} takes parameters {sorted(sc.parameters)}; the "
                f"dataset provides {sorted(names)}."
            )
        n = self.num_points or config.num_points
        if n < 8:
            raise ValueError(f"Model {self.name!r}: num_points must be >= 8.")
        L, N = config.domain_extent, config.num_points

        def move(u, points):
            return regrid(u, points, sc, L)

        if sc.steady:

            def solve(inputs, params):
                solver = sc.make_stepper(L, n, config.dt, **params)
                return move(solver(move(inputs, n)), N)[None]

            return solve
        largest = {k: data.sampler(k, spec).bounds[1] for k, spec in config.params}
        limit = sc.max_dt(config.domain_extent, n, **largest)
        interval = config.frame_interval
        every = self.save_every or steps_per_frame(interval, limit)
        dt = interval / every
        if dt > limit * (1 + 1e-12):
            raise ValueError(
                f"Model {self.name!r}: dt = {dt:.4g} ({every} steps per frame) breaks "
                f"the stability limit {limit:.4g}; use save_every >= "
                f"{steps_per_frame(interval, limit)}."
            )

        def fn(u0, params):
            stepper = sc.make_stepper(L, n, dt, **params)
            coarse = sc.rollout(stepper, move(u0, n), num_steps, save_every=every)
            return jax.vmap(lambda u: move(u, N))(coarse)

        return fn


def parse_model(spec) -> AbstractModel:
    """A model from the command line's `--model SPEC`:
    `solver:SCENARIO[:num_points=N,save_every=K]`, or an `AbstractModel` or stepper
    callable passed through."""
    if isinstance(spec, AbstractModel):
        return spec
    if callable(spec):
        return Stepper(spec)
    kind, _, rest = str(spec).partition(":")
    if kind != "solver" or not rest:
        raise ValueError(
            f"Unknown model spec {spec!r}; write solver:SCENARIO or "
            "solver:SCENARIO:num_points=N,save_every=K (e.g. "
            "solver:burgers:num_points=128)."
        )
    scenario, _, options = rest.partition(":")
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if key not in ("num_points", "save_every") or not sep:
            raise ValueError(
                f"Model spec {spec!r}: unknown option {item!r}; options are "
                "num_points=N and save_every=K."
            )
        try:
            kwargs[key] = int(value)
        except ValueError:
            raise ValueError(
                f"Model spec {spec!r}: {key} must be an integer."
            ) from None
        if kwargs[key] < 1:
            raise ValueError(f"Model spec {spec!r}: {key} must be >= 1.")
    return SolverBaseline(scenario, **kwargs, name=str(spec))


class Evaluation(eqx.Module):
    """The rollouts of one model on one dataset split: per-sample per-step metrics
    `(B, T)` over the predicted steps 1..T (the initial frame, given to the model,
    is excluded), blow-up steps, a few example trajectories and mean spectra.
    `vrmse` is The Well's mean over channels; a dataset of C > 1 channels also has
    each channel's, `vrmse_channel_c`."""

    metrics: dict[str, np.ndarray]
    spectral: np.ndarray  # (B, T, bands)
    blowup: np.ndarray  # (B,), -1 when finite
    examples: dict[str, np.ndarray]  # "truth", "prediction": (k, T + 1, C, *N)
    spectra: dict[str, np.ndarray]  # "steps", "truth", "prediction": (S, K)
    name: str = eqx.field(static=True)
    dataset: Path = eqx.field(static=True)
    split: str = eqx.field(static=True)
    config: GenerationConfig = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    seconds: float = eqx.field(static=True)
    threshold: float = eqx.field(static=True)

    @property
    def time(self) -> np.ndarray:
        return np.arange(1, self.num_steps + 1) * self.config.frame_interval

    def summary(self, first: int = 100) -> dict:
        """Scalar figures: geometric-mean nRMSE over the first `first` steps (of the
        per-step median), median nRMSE at the last step, median high-correlation
        time, largest mass drift and max-principle violation (NaN where they do not
        apply), blow-ups, and `metric_notes`: what the domain-dependent ones mean
        on this dataset."""
        median = {
            k: _metrics.summarise(v)["quantiles"][1] for k, v in self.metrics.items()
        }
        steps = np.asarray(
            jax.vmap(lambda c: _metrics.high_correlation_steps(c, self.threshold))(
                jnp.asarray(self.metrics["correlation"])
            )
        )
        finite = self.blowup < 0
        return {
            "nrmse_geometric_mean": _metrics.geometric_mean(median["nrmse"], first),
            "nrmse_final_median": float(median["nrmse"][-1]),
            "vrmse_final_median": float(median["vrmse"][-1]),
            "vrmse_final_median_per_channel": [
                float(median[k][-1]) for k in median if k.startswith("vrmse_channel_")
            ]
            or [float(median["vrmse"][-1])],
            "correlation_final_median": float(median["correlation"][-1]),
            "high_correlation_time_median": float(
                np.median(steps) * self.config.frame_interval
            ),
            "mass_drift_max": _largest(self.metrics["mass_drift"][finite]),
            "max_principle_violation_max": _largest(
                self.metrics["max_principle_violation"][finite]
            ),
            "blowups": int((~finite).sum()),
            "trajectory_steps_per_s": self.blowup.size * self.num_steps / self.seconds,
            "metric_notes": metric_notes(self.config),
        }


def _largest(values: np.ndarray) -> float:
    """The largest finite-sample value; NaN when there is none (no finite sample,
    or a metric that does not apply here)."""
    values = values[~np.isnan(values)]
    return float(values.max()) if values.size else float("nan")


def _memory_batch(config, num_steps) -> int:
    """Trajectories per evaluation chunk: truth, prediction and the metrics'
    temporaries take about 8 float32 copies of each trajectory."""
    sc = config.scenario_obj
    frames = (num_steps + 1) * sc.num_channels * config.num_points**sc.num_spatial_dims
    return max(1, memory_budget() // (8 * 4 * frames))


def evaluate(
    model,
    data,
    *,
    split: str = "test",
    num_steps: int | None = None,
    threshold: float = 0.8,
    num_examples: int = 3,
    spectrum_steps=None,
    name: str | None = None,
) -> Evaluation:
    """Roll `model` out from the first frame of every trajectory of `split` in the
    dataset folder `data`, for `num_steps` saved frames (default: all; the
    `num_steps` of `dp.solvers.rollout`), and compare with the stored truth, in
    jitted, vmapped chunks sized to memory.

    `model`: an `AbstractModel`, a spec string (`solver:burgers:num_points=128`) or
    any stepper `u -> u_next`, applied once per saved frame. A model that produces
    NaN/inf is reported (`blowup`, and NaN metrics from that step on); evaluation
    goes on.
    """
    model = parse_model(model)
    if name:
        model = dataclasses.replace(model, name=name)
    dataset = open_split(data, split, n_input=None, n_output=None)
    config = dataset.config
    sc = config.scenario_obj
    sc.require_grid("evaluation (its field metrics)")
    if dataset.num_trajectories == 0:
        raise ValueError(f"Split {split!r} of {data} holds no trajectories.")
    # A steady sample is compared once: its solution is the one "step".
    horizon = 1 if sc.steady else config.num_steps
    if num_steps is None:
        num_steps = horizon
    if not 1 <= num_steps <= horizon:
        raise ValueError(
            f"`num_steps` must be in 1..{horizon} (the dataset's saved frames"
            f"{'; a steady scenario has one' if sc.steady else ''}), got {num_steps}."
        )
    if spectrum_steps is None and sc.steady:
        spectrum_steps = [0]
    elif spectrum_steps is None:
        spectrum_steps = sorted({num_steps // 4 or 1, num_steps // 2 or 1, num_steps})
    with config.numerics():  # the dataset's precision, whatever the global flag
        rollout_fn = model.build(config, num_steps)
        batched = jax.jit(
            jax.vmap(_compare(rollout_fn, config, jnp.asarray(spectrum_steps)))
        )
        budget = _budget_function(config, num_steps)
        size = min(_memory_batch(config, num_steps), dataset.num_trajectories)
        tally = _Tally(num_examples)
        for first, count, inputs, truth, scalars in _chunks(dataset, num_steps, size):
            # The mass budget is the data's, not the model's work: not timed.
            mass = None if budget is None else budget(truth[:, 0], scalars)
            arguments = (inputs, truth, scalars, mass)
            if first == 0:  # compile and warm up: the timing is of steady rollouts
                jax.block_until_ready(batched(*arguments))
            start = time.perf_counter()
            out = jax.block_until_ready(batched(*arguments))
            tally.seconds += time.perf_counter() - start
            tally.add(jax.tree.map(lambda v, n=count: np.asarray(v)[:n], out), truth)
    return tally.evaluation(
        name=model.name,
        dataset=Path(data),
        split=split,
        config=config,
        num_steps=num_steps,
        spectrum_steps=spectrum_steps,
        threshold=threshold,
    )


def _budget_function(config: GenerationConfig, num_steps: int) -> Callable | None:
    """On a non-periodic domain whose scenario has a conservative stepper (and
    conserves something), a jitted `fn(u0s, scalars) -> (B, num_steps + 1)`: the
    mass budget `b(t)` of the boundary fluxes from each initial state
    (`mass_budget`); None otherwise."""
    sc = config.scenario_obj
    if sc.boundary == "periodic" or sc.steady or not sc.conserved_channels:
        return None
    if not _has_budget(config):
        return None
    sc, names = config.scenario_obj, [n for n, _ in config.params]

    def one(u0, scalars):
        params = {k: scalars[i] for i, k in enumerate(names)}
        stepper = sc.make_stepper(
            config.domain_extent, config.num_points, config.dt, **params
        )
        _, b = mass_budget(
            stepper, u0, num_steps, save_every=config.save_every, throw=False
        )
        return b.astype(u0.dtype)

    return jax.jit(jax.vmap(one))


def _compare(rollout_fn: Callable, config: GenerationConfig, spectrum_steps):
    """`fn(u0, truth, scalars, mass)`: one trajectory's rollout and its per-step
    metrics, spectral errors, blow-up step, prediction, and the spectra of
    prediction and truth at `spectrum_steps`. On a non-periodic domain the mass is
    compared with `mass`, the scenario solver's boundary-flux budget
    (`_budget_function`; NaN without one), the max principle is bounded over all
    times and the spectral errors are NaN (`metric_notes`)."""
    names = [n for n, _ in config.params]
    sc = config.scenario_obj
    periodic = sc.boundary == "periodic"
    conserved = sc.conserved_channels
    # A steady sample's frame is the solution itself; a rollout's first frame is
    # the given initial state, not compared.
    first = 0 if sc.steady else 1

    def one(u0, truth, scalars, mass):
        params = {k: scalars[i] for i, k in enumerate(names)}
        pred = rollout_fn(u0, params).astype(truth.dtype)
        p, t = pred[first:], truth[first:]
        if mass is not None:  # open domain: the stepper's own mass, e.g. ∫M(u)
            stepper = sc.make_stepper(
                config.domain_extent, config.num_points, config.dt, **params
            )
            drift = jnp.abs(jax.vmap(stepper.mass)(pred) - mass)
        else:
            drift = _metrics.mass_drift(
                pred, domain_extent=config.domain_extent, channels=conserved or None
            )
        if sc.steady or not conserved or (not periodic and mass is None):
            drift = jnp.full_like(drift, jnp.nan)
        principle = _metrics.max_principle_violation(
            pred, truth, over_time=not periodic
        )
        if sc.steady:  # no initial state to bound the solution by
            principle = jnp.full_like(principle, jnp.nan)
        vrmse = _metrics.vrmse(p, t)
        metrics = {
            "rmse": _metrics.rmse(p, t),
            "nrmse": _metrics.nrmse(p, t),
            "vrmse": jnp.mean(vrmse, axis=1),  # The Well's summary over channels
            "correlation": _metrics.correlation(p, t),
            "mass_drift": drift[first:],
            "max_principle_violation": principle[first:],
        }
        if vrmse.shape[1] > 1:
            for c in range(vrmse.shape[1]):
                metrics[f"vrmse_channel_{c}"] = vrmse[:, c]
        spectral = _metrics.spectral_errors(p, t)
        if not periodic:
            spectral = jnp.full_like(spectral, jnp.nan)
        spectrum = jax.vmap(_metrics.energy_spectrum)
        return (
            metrics,
            spectral,
            _metrics.blowup_step(pred),
            pred,
            spectrum(pred[spectrum_steps]),
            spectrum(truth[spectrum_steps]),
        )

    return one


def _chunks(dataset, num_steps: int, size: int):
    """`(first, count, truth, scalars)` host chunks of `size` trajectories (the last
    padded by repeating its last trajectory, so every chunk compiles once), truth
    cut to `num_steps + 1` frames."""
    total = dataset.num_trajectories
    steady = dataset.config.scenario_obj.steady
    for first in range(0, total, size):
        items = [dataset[i] for i in range(first, min(first + size, total))]
        frames = [
            np.concatenate([it["input_fields"], it["output_fields"]])[: num_steps + 1]
            for it in items
        ]
        truth = np.stack(frames)
        # What a model starts from: the first frame, or a steady sample's inputs.
        inputs = (
            np.stack([it["constant_fields"] for it in items]) if steady else truth[:, 0]
        )
        scalars = np.stack([it["constant_scalars"] for it in items])
        pad = size - len(items)
        if pad:
            truth = np.concatenate([truth, np.repeat(truth[-1:], pad, 0)])
            inputs = np.concatenate([inputs, np.repeat(inputs[-1:], pad, 0)])
            scalars = np.concatenate([scalars, np.repeat(scalars[-1:], pad, 0)])
        yield first, len(items), inputs, truth, scalars


class _Tally:
    """The chunks' results gathered into one `Evaluation`."""

    def __init__(self, num_examples: int):
        self.metrics, self.spectral, self.blowup = [], [], []
        self.examples = {"truth": [], "prediction": []}
        self.spectra = {"truth": 0.0, "prediction": 0.0}
        self.num_examples, self.seconds = num_examples, 0.0

    def add(self, out, truth):
        m, s, b, pred, ps, ts = out
        self.metrics.append(m)
        self.spectral.append(s)
        self.blowup.append(b)
        self.spectra["prediction"] = self.spectra["prediction"] + np.nansum(ps, 0)
        self.spectra["truth"] = self.spectra["truth"] + ts.sum(axis=0)
        room = self.num_examples - sum(len(e) for e in self.examples["truth"])
        if room > 0:
            self.examples["truth"].append(truth[:room])
            self.examples["prediction"].append(pred[:room])

    def evaluation(self, *, spectrum_steps, **fields) -> Evaluation:
        blowup = np.concatenate(self.blowup)
        total = blowup.size
        metrics = self.metrics
        return Evaluation(
            metrics={k: np.concatenate([m[k] for m in metrics]) for k in metrics[0]},
            spectral=np.concatenate(self.spectral),
            blowup=blowup,
            examples={k: np.concatenate(v) for k, v in self.examples.items()},
            spectra={
                "steps": np.asarray(spectrum_steps),
                "truth": self.spectra["truth"] / total,
                "prediction": self.spectra["prediction"] / total,
            },
            seconds=self.seconds,
            **fields,
        )
