import abc
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..datasets import GenerationConfig, get_scenario, open as open_split
from ..datasets._config import steps_per_frame
from ..datasets._generate import memory_budget
from ..datasets._scenarios import rollout_from_zero
from ..solvers import rollout
from . import _metrics


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


def check_compatible(name: str, model_scenario, data_scenario) -> None:
    """A model built for `model_scenario` must see as many spatial dimensions and
    channels in the dataset's scenario."""
    a, b = model_scenario, data_scenario
    if (a.num_spatial_dims, a.num_channels) != (b.num_spatial_dims, b.num_channels):
        raise ValueError(
            f"Model {name!r} is for {a.num_spatial_dims}D states with "
            f"{a.num_channels} channels; the dataset ({b.name}) is "
            f"{b.num_spatial_dims}D with {b.num_channels}."
        )


class AbstractModel(eqx.Module):
    """Something to roll out: `build(config, steps)` returns `fn(u0, params) -> (T + 1,
    C, *N)` for a dataset's `GenerationConfig` (grid, frame interval, parameters);
    `params` maps each dataset parameter to the trajectory's scalar value."""

    name: eqx.AbstractVar[str]

    @abc.abstractmethod
    def build(self, config: GenerationConfig, steps: int) -> Callable:
        """The per-trajectory rollout function (jit- and vmap-friendly)."""


class Stepper(AbstractModel):
    """Any callable `u -> u_next` on an unbatched `(C, *N)` state (a solver, a neural
    operator, a hybrid), applied once per saved frame of the dataset."""

    stepper: Callable
    name: str = eqx.field(static=True, default="model")

    def __check_init__(self):
        if not callable(self.stepper):
            raise ValueError("A model must be callable: u (C, *N) -> u_next.")

    def build(self, config, steps):
        def fn(u0, params):
            del params
            out = jax.eval_shape(self.stepper, u0)
            if out.shape != u0.shape:
                raise ValueError(
                    f"Model {self.name!r} maps a state of shape {u0.shape} to "
                    f"{out.shape}; it must keep the dataset's grid (C, *N)."
                )
            return rollout(self.stepper, u0, steps, throw=False)

        return fn


class SolverBaseline(AbstractModel):
    """A registered scenario's own stepper as a classical baseline, optionally on a
    coarser grid (`num_points`; states are Fourier-resampled in and out) or with
    fewer solver steps per saved frame (`save_every`, i.e. a larger dt). The
    trajectory's parameters (e.g. ν) come from the dataset. Default `save_every`: the
    fewest steps per frame within the scheme's stability limit at that grid."""

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

    def build(self, config, steps):
        sc, data = get_scenario(self.scenario), config.scenario_obj
        check_compatible(self.name, sc, data)
        names = [n for n, _ in config.params]
        if sorted(sc.parameters) != sorted(names):
            raise ValueError(
                f"Model {self.name!r} takes parameters {sorted(sc.parameters)}; the "
                f"dataset provides {sorted(names)}."
            )
        n = self.num_points or config.num_points
        if n != config.num_points and sc.boundary != "periodic":
            raise ValueError(
                f"Model {self.name!r}: num_points differs from the dataset's, and "
                "grids are resampled spectrally, which needs periodic data; scenario "
                f"{sc.name!r} has {sc.boundary} boundaries. Leave num_points out."
            )
        if n < 8:
            raise ValueError(f"Model {self.name!r}: num_points must be >= 8.")
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
            stepper = sc.make_stepper(config.domain_extent, n, dt, **params)
            coarse = rollout_from_zero(
                stepper, resample(u0, n), steps, save_every=every
            )
            return jax.vmap(lambda u: resample(u, config.num_points))(coarse)

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
    is excluded), blow-up steps, a few example trajectories and mean spectra."""

    metrics: dict[str, np.ndarray]
    spectral: np.ndarray  # (B, T, bands)
    blowup: np.ndarray  # (B,), -1 when finite
    examples: dict[str, np.ndarray]  # "truth", "prediction": (k, T + 1, C, *N)
    spectra: dict[str, np.ndarray]  # "steps", "truth", "prediction": (S, K)
    name: str = eqx.field(static=True)
    dataset: Path = eqx.field(static=True)
    split: str = eqx.field(static=True)
    config: GenerationConfig = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    seconds: float = eqx.field(static=True)
    threshold: float = eqx.field(static=True)

    @property
    def time(self) -> np.ndarray:
        return np.arange(1, self.steps + 1) * self.config.frame_interval

    def summary(self, first: int = 100) -> dict:
        """Scalar figures: geometric-mean nRMSE over the first `first` steps (of the
        per-step median), median nRMSE at the last step, median high-correlation
        time, largest mass drift and max-principle violation, blow-ups."""
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
            "correlation_final_median": float(median["correlation"][-1]),
            "high_correlation_time_median": float(
                np.median(steps) * self.config.frame_interval
            ),
            "mass_drift_max": float(np.nanmax(self.metrics["mass_drift"][finite]))
            if finite.any()
            else float("nan"),
            "max_principle_violation_max": float(
                np.nanmax(self.metrics["max_principle_violation"][finite])
            )
            if finite.any()
            else float("nan"),
            "blowups": int((~finite).sum()),
            "trajectory_steps_per_s": self.blowup.size * self.steps / self.seconds,
        }


def _memory_batch(config, steps) -> int:
    """Trajectories per evaluation chunk: truth, prediction and the metrics'
    temporaries take about 8 float32 copies of each trajectory."""
    sc = config.scenario_obj
    frames = (steps + 1) * sc.num_channels * config.num_points**sc.num_spatial_dims
    return max(1, memory_budget() // (8 * 4 * frames))


def evaluate(
    model,
    data,
    *,
    split: str = "test",
    steps: int | None = None,
    threshold: float = 0.8,
    num_examples: int = 3,
    spectrum_steps=None,
    name: str | None = None,
) -> Evaluation:
    """Roll `model` out from the first frame of every trajectory of `split` in the
    dataset folder `data`, for `steps` saved frames (default: all), and compare with
    the stored truth, in jitted, vmapped chunks sized to memory.

    `model`: an `AbstractModel`, a spec string (`solver:burgers:num_points=128`) or
    any stepper `u -> u_next`, applied once per saved frame. A model that produces
    NaN/inf is reported (`blowup`, and NaN metrics from that step on); evaluation
    goes on.
    """
    model = parse_model(model)
    if name:
        model = dataclasses.replace(model, name=name)
    dataset = open_split(data, split, n_input=1, n_output=None)
    config = dataset.config
    if dataset.num_trajectories == 0:
        raise ValueError(f"Split {split!r} of {data} holds no trajectories.")
    if steps is None:
        steps = config.num_steps
    if not 1 <= steps <= config.num_steps:
        raise ValueError(
            f"--steps must be in 1..{config.num_steps} (the dataset's saved frames), "
            f"got {steps}."
        )
    if spectrum_steps is None:
        spectrum_steps = sorted({steps // 4 or 1, steps // 2 or 1, steps})
    with config.numerics():  # the dataset's precision, whatever the global flag
        names = [n for n, _ in config.params]
        rollout_fn = model.build(config, steps)

        def one(u0, truth, scalars):
            params = {k: scalars[i] for i, k in enumerate(names)}
            pred = rollout_fn(u0, params).astype(truth.dtype)
            p, t = pred[1:], truth[1:]
            out = {
                "rmse": _metrics.rmse(p, t),
                "nrmse": _metrics.nrmse(p, t),
                "vrmse": _metrics.vrmse(p, t),
                "correlation": _metrics.correlation(p, t),
                "mass_drift": _metrics.conservation_error(
                    pred, domain_extent=config.domain_extent
                )[1:],
                "max_principle_violation": _metrics.max_principle_violation(
                    pred, truth
                )[1:],
            }
            spectra = jax.vmap(_metrics.energy_spectrum)(
                pred[jnp.asarray(spectrum_steps)]
            )
            truth_spectra = jax.vmap(_metrics.energy_spectrum)(
                truth[jnp.asarray(spectrum_steps)]
            )
            return (
                out,
                _metrics.spectral_errors(p, t),
                _metrics.blowup_step(pred),
                pred,
                spectra,
                truth_spectra,
            )

        batched = jax.jit(jax.vmap(one))
        size = min(_memory_batch(config, steps), dataset.num_trajectories)
        metrics, spectral, blowup = [], [], []
        examples = {"truth": [], "prediction": []}
        spectra = {"truth": 0.0, "prediction": 0.0}
        seconds = 0.0
        for first in range(0, dataset.num_trajectories, size):
            items = [
                dataset[i]
                for i in range(first, min(first + size, dataset.num_trajectories))
            ]
            count = len(items)
            truth = np.stack(
                [
                    np.concatenate([it["input_fields"], it["output_fields"]])[
                        : steps + 1
                    ]
                    for it in items
                ]
            )
            scalars = np.stack([it["constant_scalars"] for it in items])
            pad = size - count
            if pad:
                truth = np.concatenate([truth, np.repeat(truth[-1:], pad, 0)])
                scalars = np.concatenate([scalars, np.repeat(scalars[-1:], pad, 0)])
            if first == 0:  # compile and warm up: the timing is of steady rollouts
                jax.block_until_ready(batched(truth[:, 0], truth, scalars))
            start = time.perf_counter()
            out = jax.block_until_ready(batched(truth[:, 0], truth, scalars))
            seconds += time.perf_counter() - start
            m, s, b, pred, ps, ts = jax.tree.map(
                lambda v, n=count: np.asarray(v)[:n], out
            )
            metrics.append(m)
            spectral.append(s)
            blowup.append(b)
            spectra["prediction"] = spectra["prediction"] + np.nansum(ps, axis=0)
            spectra["truth"] = spectra["truth"] + ts.sum(axis=0)
            room = num_examples - sum(len(e) for e in examples["truth"])
            if room > 0:
                examples["truth"].append(truth[:room])
                examples["prediction"].append(pred[:room])
    total = dataset.num_trajectories
    return Evaluation(
        name=model.name,
        dataset=Path(data),
        split=split,
        config=config,
        steps=steps,
        metrics={k: np.concatenate([m[k] for m in metrics]) for k in metrics[0]},
        spectral=np.concatenate(spectral),
        blowup=np.concatenate(blowup),
        examples={k: np.concatenate(v) for k, v in examples.items()},
        spectra={
            "steps": np.asarray(spectrum_steps),
            "truth": spectra["truth"] / total,
            "prediction": spectra["prediction"] / total,
        },
        seconds=seconds,
        threshold=threshold,
    )
