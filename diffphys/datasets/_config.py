import dataclasses
import hashlib
import json
import math

import equinox as eqx

from ._scenarios import get_scenario, list_scenarios, Scenario


SPLITS = ("train", "valid", "test")
PRECISIONS = ("float32", "float64")
SOURCES = ("solver", "exact")
# Shards are sized to about this many bytes on disk (and at most 1024 trajectories),
# so a crash loses little work and one file stays easy to move.
_SHARD_BYTES = 64 * 2**20


class Shard(eqx.Module):
    """One output file: trajectories `start..stop` (global indices) of `split`."""

    split: str = eqx.field(static=True)
    index: int = eqx.field(static=True)
    start: int = eqx.field(static=True)
    stop: int = eqx.field(static=True)
    filename: str = eqx.field(static=True)

    @property
    def path(self) -> str:
        """The path relative to the dataset folder."""
        return f"data/{self.split}/{self.filename}"

    @property
    def size(self) -> int:
        return self.stop - self.start


class GenerationConfig(eqx.Module):
    """Everything that determines a dataset's arrays. Two equal configs give
    bit-identical shards on the same platform; `hash` names it.

    Build it with `make_config(scenario, **overrides)`, which fills the scenario's
    defaults and checks what depends on the scenario (its parameters, the stability
    limit); the fields' own invariants are checked here, whoever builds it.
    """

    scenario: str = eqx.field(static=True)
    num_samples: int = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    save_every: int = eqx.field(static=True)
    seed: int = eqx.field(static=True)
    split: tuple[float, ...] = eqx.field(static=True)
    shard_size: int = eqx.field(static=True)
    params: tuple[tuple[str, str], ...] = eqx.field(static=True)
    precision: str = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    source: str = eqx.field(static=True, default="solver")

    def __check_init__(self):
        for name in ("num_samples", "num_points", "save_every"):
            _positive_int(name, getattr(self, name))
        steps = self.num_steps  # 0: a steady scenario's one frame
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"`num_steps` must be an integer >= 0, got {steps!r}.")
        _positive_int("shard_size", self.shard_size)
        dt = self.dt
        if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"`dt` must be a positive number, got {dt!r}.")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {PRECISIONS}, got {self.precision!r}."
            )
        if self.source not in SOURCES:
            raise ValueError(f"`source` must be one of {SOURCES}, got {self.source!r}.")
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise ValueError(f"`seed` must be an integer in [0, 2^31), got {seed!r}.")
        split = self.split
        if len(split) != 3 or any(s < 0 for s in split) or abs(sum(split) - 1) > 1e-9:
            raise ValueError(
                "`split` needs three non-negative fractions (train, valid, test) "
                f"summing to 1, got {split}."
            )
        if round(split[0] * self.num_samples) < 1:
            raise ValueError(
                f"`num_samples={self.num_samples}` with `split={split}` leaves the "
                "train split empty; raise `num_samples` or the train fraction."
            )

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["split"] = list(self.split)
        out["params"] = dict(self.params)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        # Fields with a default (added later, e.g. `source`) may be absent in the
        # configs of older datasets.
        required = {
            f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
        }
        if not required <= set(data) <= fields:
            raise ValueError(
                f"Config keys {sorted(data)} differ from {sorted(fields)}."
            )
        data = dict(data)
        data["split"] = tuple(data["split"])
        data["params"] = tuple(sorted(data["params"].items()))
        return cls(**data)

    @property
    def hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def numerics(self):
        """A context in which JAX computes in exactly this config's precision
        (`jax.enable_x64` on for float64, off for float32), whatever the caller's
        global flag, so that results depend on the config alone."""
        import jax

        enable_x64 = getattr(jax, "enable_x64", None)
        if enable_x64 is None:  # jax < 0.7 kept it in jax.experimental
            from jax.experimental import enable_x64
        return enable_x64(self.precision == "float64")

    @property
    def scenario_obj(self) -> Scenario:
        return get_scenario(self.scenario)

    @property
    def num_frames(self) -> int:
        return self.num_steps + 1

    @property
    def frame_interval(self) -> float:
        return self.dt * self.save_every

    def split_sizes(self) -> dict[str, int]:
        train = round(self.split[0] * self.num_samples)
        valid = round(self.split[1] * self.num_samples)
        return {
            "train": train,
            "valid": valid,
            "test": self.num_samples - train - valid,
        }

    def shards(self) -> list[Shard]:
        """The dataset's files in a fixed order: splits in turn, each cut into
        `shard_size` pieces; trajectory indices are global (train first)."""
        out, start = [], 0
        width = max(5, len(str(self.num_samples)))
        for split, size in self.split_sizes().items():
            for index, first in enumerate(range(start, start + size, self.shard_size)):
                stop = min(first + self.shard_size, start + size)
                name = f"{self.scenario}_{index:0{width}d}.hdf5"
                out.append(Shard(split, index, first, stop, name))
            start += size
        return out


def steps_per_frame(frame_interval: float, dt_max: float) -> int:
    """The fewest solver steps between saved frames that keep `dt <= dt_max`."""
    return max(1, math.ceil(frame_interval / dt_max * (1 - 1e-12)))


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return value


def parse_split(split) -> tuple[float, ...]:
    """`"0.8,0.1,0.1"` or a triple → a triple of floats (checked by
    `GenerationConfig`)."""
    if isinstance(split, str):
        try:
            split = tuple(float(p) for p in split.split(","))
        except ValueError:
            raise ValueError(
                f"`split={split!r}`: write three fractions, e.g. 0.8,0.1,0.1."
            ) from None
    return tuple(float(s) for s in split)


def parse_params(params) -> dict[str, str]:
    """`["nu=0.01", "a=0:1"]` or a mapping → {name: spec}."""
    if params is None:
        return {}
    if isinstance(params, dict):
        return {str(k): str(v) for k, v in params.items()}
    out = {}
    for item in params:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ValueError(
                f"`params` entry {item!r}: write name=value, name=lo:hi, "
                "name=lo:hi:log or name=a,b,c."
            )
        out[name.strip()] = spec.strip()
    return out


def make_config(
    scenario: str,
    *,
    num_samples: int | None = None,
    num_points: int | None = None,
    num_steps: int | None = None,
    dt: float | None = None,
    save_every: int | None = None,
    seed: int = 0,
    split="0.8,0.1,0.1",
    shard_size: int | None = None,
    params=None,
    precision: str | None = None,
    source: str = "solver",
) -> GenerationConfig:
    """A checked `GenerationConfig` with the scenario's defaults for what is `None`.

    Time step: without `dt`, frames stay the scenario's `frame_interval` apart and
    `dt = frame_interval / save_every` with the smallest `save_every` that keeps `dt`
    within the scheme's stability limit (evaluated at the largest parameter values
    drawn). A given `dt` is checked against that limit; the error names the largest
    stable one.

    `source`: `"solver"` (run the scenario's solver) or `"exact"` (evaluate its
    analytic solution at the frame times; dt then only names the frame spacing).

    `precision`: `"float32"` or `"float64"`; default the scenario's first (float32,
    or float64 where the solver needs it).
    """
    sc = get_scenario(scenario)
    precision = sc.precisions[0] if precision is None else precision
    if precision in PRECISIONS and precision not in sc.precisions:
        raise ValueError(
            f"Scenario {sc.name!r} computes in {', '.join(sc.precisions)} only, "
            f"not {precision}; leave `precision` out."
        )
    if source == "exact" and sc.exact is None:
        with_exact = sorted(n for n, s in list_scenarios().items() if s.exact)
        raise ValueError(
            f"Scenario {sc.name!r} has no analytic solution; use `source='solver'`, "
            f"or one of: {', '.join(with_exact)}."
        )

    def default(value, fallback):
        return fallback if value is None else value

    num_samples = _positive_int("num_samples", default(num_samples, sc.num_samples))
    num_points = _positive_int("num_points", default(num_points, sc.num_points))
    low, high = sc.num_points_range
    if not low <= num_points <= high:
        what = f"the {sc.entities} count" if sc.entities else "grid points per axis"
        raise ValueError(
            f"`num_points` ({what}) of scenario {sc.name!r} must be in {low}..{high}, "
            f"got {num_points}."
        )
    if sc.steady:
        if num_steps not in (None, 0):
            raise ValueError(
                f"Scenario {sc.name!r} is steady: each sample is one frame (the "
                "solution); leave `num_steps` out."
            )
        num_steps = 0
    else:
        num_steps = _positive_int("num_steps", default(num_steps, sc.num_steps))
    specs = parse_params(params)
    samplers = {name: sc.sampler(name, specs.get(name)) for name in sc.parameters}
    for name in specs:
        sc.sampler(name)  # unknown names raise, listing the known ones
    largest = {name: s.bounds[1] for name, s in samplers.items()}
    dt_max = sc.max_dt(sc.domain_extent, num_points, **largest)
    if dt is None:
        if save_every is None:
            save_every = steps_per_frame(sc.frame_interval, dt_max)
        dt = sc.frame_interval / _positive_int("save_every", save_every)
    else:
        if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"`dt` must be a positive number, got {dt!r}.")
        if save_every is None:
            save_every = max(1, round(sc.frame_interval / dt))
    save_every = _positive_int("save_every", save_every)
    if dt > dt_max * (1 + 1e-12):
        raise ValueError(
            f"dt = {dt:.4g} is above the stability limit {dt_max:.4g} of scenario "
            f"{sc.name!r} at {num_points} points (largest parameters {largest}); "
            f"use `dt={dt_max:.4g}` or less, or raise `save_every` to "
            f"{math.ceil(dt * save_every / dt_max)} and leave `dt` out."
        )
    split = parse_split(split)
    if shard_size is None:
        # At most _SHARD_BYTES and 1024 trajectories per file, the train split cut
        # into equal pieces (equal batches, no padded work).
        channels = sc.num_channels + sc.num_constant_channels
        frame_bytes = channels * math.prod(sc.space_shape(num_points)) * 4
        most = max(1, min(1024, _SHARD_BYTES // (frame_bytes * (num_steps + 1))))
        num_train = round(split[0] * num_samples)
        shard_size = -(-num_train // -(-num_train // most))
    return GenerationConfig(
        scenario=sc.name,
        num_samples=num_samples,
        num_points=num_points,
        num_steps=num_steps,
        dt=float(dt),
        save_every=save_every,
        seed=seed,
        split=split,
        shard_size=shard_size,
        params=tuple(sorted((n, s.spec) for n, s in samplers.items())),
        precision=precision,
        domain_extent=float(sc.domain_extent),
        source=source,
    )
