"""The Well's per-file HDF5 schema: writing one shard, and checking any file.

Schema (The Well, `docs/data_format.md`): root attributes `dataset_name`,
`grid_type`, `n_spatial_dims`, `n_trajectories`, `simulation_parameters` and one
attribute per parameter; groups `dimensions/` (`time`, one coordinate per axis),
`boundary_conditions/`, `scalars/`, `t0_fields/`, `t1_fields/`, `t2_fields/`, each
with the attributes below. Fields are `(n_traj, n_steps, *space[, D[, D]])`.

Per-entity data (ours, `@grid_type = "entities"`): `space` is one entity axis, named
by `dimensions/@entity_dims` (e.g. `["body"]`) and indexed by `dimensions/body`;
`@spatial_dims` still names the `D` components of vectors; no boundary conditions.
"""

import h5py
import numpy as np


AXES = ("x", "y", "z")
_FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
# h5py's chunk cache per open dataset; The Well's loader uses 8 MiB as well.
CHUNK_CACHE_BYTES = 8 * 2**20


class SchemaError(ValueError):
    """A file that is not a valid The Well-format HDF5 file; the message is the
    one-line reason."""


def _flags(obj, *, sample: bool, time: bool):
    obj.attrs["sample_varying"] = sample
    obj.attrs["time_varying"] = time


def create_shard_file(path, config, shard, *, dtype) -> h5py.File:
    """Create the file for `shard` with every group, coordinate and attribute, and
    empty field and scalar datasets to be filled batch by batch. Returns it open."""
    sc = config.scenario_obj
    d, n, frames = sc.num_spatial_dims, config.num_points, config.num_frames
    space = sc.space_shape(n)
    f = h5py.File(path, "w", track_order=False)
    params = [name for name, _ in config.params]
    f.attrs["dataset_name"] = sc.name
    f.attrs["grid_type"] = sc.grid_type
    f.attrs["n_spatial_dims"] = d
    f.attrs["n_trajectories"] = shard.size
    f.attrs["simulation_parameters"] = params
    for name, spec in config.params:
        try:
            f.attrs[name] = float(spec)  # a fixed value
        except ValueError:
            f.attrs[name] = spec  # drawn per trajectory: the spec; values in scalars/
    f.attrs["diffphys_config_hash"] = config.hash
    f.attrs["diffphys_first_trajectory"] = shard.start

    dims = f.create_group("dimensions")
    dims.attrs["spatial_dims"] = list(AXES[:d])
    time = dims.create_dataset(
        "time", data=(np.arange(frames) * config.frame_interval).astype(dtype)
    )
    _flags(time, sample=False, time=True)
    coordinate = sc.coordinates(n, config.domain_extent).astype(dtype)
    axes = AXES[:d] if sc.entities is None else (sc.entities,)
    if sc.entities is not None:
        dims.attrs["entity_dims"] = [sc.entities]
    for axis in axes:
        _flags(dims.create_dataset(axis, data=coordinate), sample=False, time=False)

    bcs = f.create_group("boundary_conditions")
    for axis in AXES[:d] if sc.entities is None else ():
        group = bcs.create_group(f"{axis}_{sc.boundary}")
        group.attrs["associated_dims"] = [axis]
        group.attrs["associated_fields"] = []
        group.attrs["bc_type"] = sc.boundary
        _flags(group, sample=False, time=False)
        mask = np.zeros(n, bool)
        mask[[0, -1]] = True
        group.create_dataset("mask", data=mask)

    scalars = f.create_group("scalars")
    scalars.attrs["field_names"] = params
    for name, spec in config.params:
        varying = sc.sampler(name, spec).varies
        shape = (shard.size,) if varying else ()
        _flags(scalars.create_dataset(name, shape, dtype), sample=varying, time=False)

    groups = {g: f.create_group(g) for g in _FIELD_GROUPS}
    every = sc.fields + sc.constant_fields
    for order, name in enumerate(_FIELD_GROUPS):
        groups[name].attrs["field_names"] = [
            fld.name for fld in every if fld.tensor_order == order
        ]
    for fld in every:
        # A steady scenario's inputs are The Well's constant fields: no time axis.
        varying = fld.name not in {c.name for c in sc.constant_fields}
        shape = (shard.size,) + (frames,) * varying + space + (d,) * fld.tensor_order
        data = groups[_FIELD_GROUPS[fld.tensor_order]].create_dataset(
            fld.name, shape, dtype, chunks=(1,) + shape[1:], track_times=False
        )
        data.attrs["dim_varying"] = [True] * len(space)
        _flags(data, sample=True, time=varying)
    return f


def str_list(value) -> list[str]:
    return [
        v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)
    ]


def check_file(path) -> h5py.File:
    """Open `path` read-only and check it against The Well's schema; raise
    `SchemaError` with a one-line reason. Returns the open file (caller closes)."""
    try:
        f = h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such file.") from None
    except OSError as e:
        raise SchemaError(
            f"{path}: not a readable HDF5 file (truncated or corrupt?): "
            f"{str(e).splitlines()[0]}"
        ) from None
    try:
        _check_open_file(f)
    except SchemaError as e:
        f.close()
        raise SchemaError(f"{path}: {e}") from None
    except (KeyError, OSError, ValueError, TypeError, IndexError) as e:
        f.close()
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SchemaError(
            f"{path}: unreadable or inconsistent content: {reason}"
        ) from None
    return f


def _require(condition, message):
    if not condition:
        raise SchemaError(message)


def _check_flags(obj, where):
    for flag in ("sample_varying", "time_varying"):
        _require(flag in obj.attrs, f"{where} lacks the attribute {flag!r}")


def _check_open_file(f: h5py.File) -> None:
    for attr in ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories"):
        _require(attr in f.attrs, f"not a The Well-format file (no root @{attr})")
    _require("simulation_parameters" in f.attrs, "root lacks @simulation_parameters")
    groups = ("dimensions", "boundary_conditions", "scalars") + _FIELD_GROUPS
    for group in groups:
        _require(group in f and isinstance(f[group], h5py.Group), f"no group {group}/")
    d = int(f.attrs["n_spatial_dims"])
    n_traj = int(f.attrs["n_trajectories"])
    _require(d in (1, 2, 3), f"@n_spatial_dims = {d} is not 1, 2 or 3")
    for p in str_list(f.attrs["simulation_parameters"]):
        _require(p in f.attrs, f"parameter {p!r} listed but no root attribute @{p}")

    dims = f["dimensions"]
    _require("spatial_dims" in dims.attrs, "dimensions/ lacks @spatial_dims")
    axes = str_list(dims.attrs["spatial_dims"])
    _require(len(axes) == d, f"@spatial_dims {axes} does not have {d} names")
    _require("time" in dims, "no dataset dimensions/time")
    _check_flags(dims["time"], "dimensions/time")
    num_frames = dims["time"].shape[-1]
    times = dims["time"][...]
    _require(np.all(np.isfinite(times)), "dimensions/time holds NaN or inf")
    _require(np.all(np.diff(times) > 0), "dimensions/time is not increasing")
    grid = str(f.attrs["grid_type"])
    _require(grid in ("cartesian", "entities"), f"unknown @grid_type {grid!r}")
    if grid == "entities":
        _require("entity_dims" in dims.attrs, "dimensions/ lacks @entity_dims")
        axes = str_list(dims.attrs["entity_dims"])
    resolution = []
    for axis in axes:
        _require(axis in dims, f"no coordinate dataset dimensions/{axis}")
        _check_flags(dims[axis], f"dimensions/{axis}")
        resolution.append(dims[axis].shape[-1])

    for name, group in f["boundary_conditions"].items():
        where = f"boundary_conditions/{name}"
        for attr in ("bc_type", "associated_dims", "associated_fields"):
            _require(attr in group.attrs, f"{where} lacks @{attr}")
        _check_flags(group, where)
        bc = str(group.attrs["bc_type"]).lower()
        _require(bc in ("periodic", "wall", "open"), f"{where}: unknown bc {bc!r}")
        _require("mask" in group, f"{where} has no mask")

    scalars = f["scalars"]
    _require("field_names" in scalars.attrs, "scalars/ lacks @field_names")
    for name in str_list(scalars.attrs["field_names"]):
        _require(name in scalars, f"scalars/{name} listed but missing")
        _check_flags(scalars[name], f"scalars/{name}")
        if scalars[name].attrs["sample_varying"]:
            _require(
                scalars[name].shape[:1] == (n_traj,),
                f"scalars/{name} varies per sample but has shape "
                f"{scalars[name].shape}, not ({n_traj},)",
            )

    for order, group_name in enumerate(_FIELD_GROUPS):
        group = f[group_name]
        _require("field_names" in group.attrs, f"{group_name}/ lacks @field_names")
        for name in str_list(group.attrs["field_names"]):
            where = f"{group_name}/{name}"
            _require(name in group, f"{where} listed but missing")
            data = group[name]
            _check_flags(data, where)
            _require("dim_varying" in data.attrs, f"{where} lacks @dim_varying")
            expected = (
                (n_traj,) * bool(data.attrs["sample_varying"])
                + (num_frames,) * bool(data.attrs["time_varying"])
                + tuple(resolution)
                + (d,) * order
            )
            _require(
                data.shape == expected,
                f"{where} has shape {data.shape}, expected {expected}",
            )
