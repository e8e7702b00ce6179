"""Computing a dataset's trajectories: one jitted, vmapped function per config,
batches sized to memory, and shards written under temporary names."""

import functools
import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._memory import memory_budget
from .._store import atomic_write, sha256
from . import _stats
from ._config import GenerationConfig, Shard
from ._folder import record_path, STATE
from ._well import create_shard_file


@functools.cache
def batch_function(config: GenerationConfig) -> Callable:
    sc = config.scenario_obj
    samplers = {name: sc.sampler(name, spec) for name, spec in config.params}
    L, N, dt = config.domain_extent, config.num_points, config.dt

    def one(index):
        dtype = jnp.dtype(config.precision)
        key = jr.fold_in(jr.key(config.seed), index)
        k_ic, k_params = jr.split(key)
        params = {
            name: samplers[name](jr.fold_in(k_params, i)).astype(dtype)
            for i, name in enumerate(sorted(samplers))
        }
        x = jnp.asarray(sc.coordinates(N, L), dtype)
        constants = None
        if sc.steady:
            constants = jnp.asarray(sc.initial_condition(N, key=k_ic), dtype)
            solver = sc.make_stepper(L, N, dt, **params)
            traj = jnp.asarray(solver(constants), dtype)[None]
        elif config.source == "exact":
            times = jnp.arange(config.num_frames, dtype=dtype) * config.frame_interval
            traj = jax.vmap(lambda t: sc.exact(x, t, **params))(times).astype(dtype)
        else:
            if sc.initial_condition is None:
                u0 = sc.exact(x, jnp.zeros((), dtype), **params)
            else:
                u0 = sc.initial_condition(N, key=k_ic)
            stepper = sc.make_stepper(L, N, dt, **params)
            u0 = jnp.asarray(u0, dtype)
            warmup = round(sc.warmup / dt)
            if warmup:  # onto the attractor; not saved
                u0 = sc.rollout(stepper, u0, 1, save_every=warmup)[-1]
            traj = sc.rollout(
                stepper, u0, config.num_steps, save_every=config.save_every
            )
        params["_finite"] = jnp.all(jnp.isfinite(traj))
        fields, moments = {}, {}
        for field in sc.fields:
            data = sc.to_field(field, traj[:, jnp.asarray(field.channels)])
            fields[field.name] = data
            moments[field.name] = _stats.moments(data, field.tensor_order)
        for field in sc.constant_fields:
            data = sc.to_field(field, constants[None, jnp.asarray(field.channels)])
            fields[field.name] = data[0]
            moments[field.name] = _stats.moments(data, field.tensor_order)
        return fields, params, moments

    if sc.vectorise:
        return jax.jit(jax.vmap(one))
    return jax.jit(lambda indices: jax.lax.map(one, indices))


def batch_size(config: GenerationConfig) -> int:
    """Trajectories per vmapped batch: the whole shard unless its frames (kept twice:
    the scan's stacked output and the copy handed to the host) exceed a budget of
    a quarter of the device memory (GPU) or 512 MiB (CPU)."""
    sc = config.scenario_obj
    itemsize = 8 if config.precision == "float64" else 4
    channels = config.num_frames * sc.num_channels + sc.num_constant_channels
    per_trajectory = 2 * channels * itemsize
    per_trajectory *= math.prod(sc.space_shape(config.num_points))
    return max(1, min(config.shard_size, memory_budget() // per_trajectory))


def batch_plan(config: GenerationConfig, start: int, stop: int) -> tuple[int, list]:
    """The batch size and first indices that cut `start..stop` into equal batches of
    at most `batch_size(config)` trajectories (the last one padded)."""
    most = batch_size(config)
    size = -(-(stop - start) // -(-(stop - start) // most))
    return size, list(range(start, stop, size))


def compute_batches(config: GenerationConfig, start: int, stop: int) -> Iterable:
    """Yield `(offset, fields, params, moments)` host batches for trajectories
    `start..stop`: fields `(B, T, *space[, D])`, per-trajectory parameters and
    per-trajectory field moments.

    The range is cut into equal batches of at most `batch_size(config)` (the last
    padded, its padding dropped), and the next batch is dispatched before the
    current one is fetched, so the device computes while the host writes.
    """
    size, offsets = batch_plan(config, start, stop)
    fn = batch_function(config)

    def dispatch(first):
        indices = np.minimum(np.arange(first, first + size), stop - 1)
        return fn(jnp.asarray(indices))

    pending = dispatch(offsets[0]) if offsets else None
    for i, first in enumerate(offsets):
        current = pending
        pending = dispatch(offsets[i + 1]) if i + 1 < len(offsets) else None
        count = min(size, stop - first)
        fields, params, moments = jax.tree.map(
            lambda v, n=count: v[:n], jax.device_get(current)
        )
        finite = params.pop("_finite")
        if not finite.all():
            bad = int(np.argmin(finite))
            drawn = {k: float(v[bad]) for k, v in params.items()}
            raise ValueError(
                f"Trajectory {first + bad} blew up or its solver failed (NaN or inf) "
                f"with parameters {drawn} at dt = {config.dt:.4g}; lower `dt` (raise "
                "`save_every`) or narrow the `params` ranges. Complete shards are "
                "kept."
            )
        yield first - start, fields, params, moments


def write_shard(
    config: GenerationConfig,
    shard: Shard,
    out: Path,
    advance: Callable[[int], None] | None = None,
) -> dict:
    """Compute `shard`, write it under a temporary name, record its checksum, then
    rename it into place. Returns its record. A pure function of (config, shard)."""
    out = Path(out)
    sc = config.scenario_obj
    tmp = out / STATE / "tmp" / f"{shard.split}-{shard.filename}"
    tmp.unlink(missing_ok=True)
    space = math.prod(sc.space_shape(config.num_points))
    stats = {f.name: _stats.RunningStats(config.num_frames, space) for f in sc.fields}
    stats |= {f.name: _stats.RunningStats(1, space) for f in sc.constant_fields}
    dtype = np.dtype(config.precision)
    with config.numerics(), create_shard_file(tmp, config, shard, dtype=dtype) as f:
        fields = {
            fld.name: f[f"t{fld.tensor_order}_fields/{fld.name}"]
            for fld in sc.fields + sc.constant_fields
        }
        varying = {
            n: f["scalars"][n] for n, _ in config.params if f["scalars"][n].shape
        }
        fixed = {
            n: f["scalars"][n] for n, _ in config.params if not f["scalars"][n].shape
        }
        batches = compute_batches(config, shard.start, shard.stop)
        for offset, batch, params, moments in batches:
            window = slice(offset, offset + len(next(iter(batch.values()))))
            for name, data in batch.items():
                fields[name][window] = data
                stats[name].update(moments[name])
            for name, data in params.items():
                if name in varying:
                    varying[name][window] = data
                elif offset == 0:
                    fixed[name][()] = data[0]
            if advance is not None:
                advance(window.stop - window.start)
    record = {
        "path": shard.path,
        "split": shard.split,
        "samples": [shard.start, shard.stop],
        "bytes": tmp.stat().st_size,
        "sha256": sha256(tmp),
        "stats": {name: s.to_record() for name, s in stats.items()},
    }
    atomic_write(record_path(out, shard), json.dumps(record))
    os.replace(tmp, out / shard.path)
    return record
