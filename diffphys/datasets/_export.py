"""PDEBench's single-file layout, with PDEBench's conventions, and the check of an
exported file by `describe` (`diffphys info`)."""

import json
import math
import os
from pathlib import Path

import h5py
import numpy as np

from ..solvers import cell_centres
from ._folder import load_manifest, split_shards
from ._well import AXES


# The marker attribute of an exported file: `describe` recognises it by this.
PDEBENCH_FORMAT = "diffphys.pdebench/1"
# PDEBench's single-file loader takes the first `int(N * test_ratio)` samples as the
# test set; its per-sample loader (FNODatasetMult) the groups from
# `int(N * (1 - test_ratio))` on.
EXPORT_ORDER = ("test", "train", "valid")
PER_SAMPLE_ORDER = ("train", "valid", "test")


def export_pdebench(
    folder,
    out,
    *,
    virtual: bool = False,
    field: str | None = None,
    split: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a dataset folder as one file in PDEBench's layout, with PDEBench's
    conventions, so that a file named like PDEBench's holds the physics its name
    means.

    - Arrays `(samples, time, *space)` in the dataset's precision: a dataset of one
        scalar field (or `field=` naming one) as `tensor`; vector fields in
        PDEBench's CFD layout, one array per component (`Vx`, `Vy`, `Vz`) and each
        scalar field under its name. (PDEBench's `FNODatasetSingle` reads a CFD
        file only with `density` and `pressure` too; h5py reads any.)
    - Parameters under PDEBench's names and in PDEBench's units (`Parameter.
        pdebench_name`, `pdebench_scale`): Burgers' `Nu` is the ν of PDEBench's
        `u_t + (u²/2)_x = (ν/π) u_xx`, π times our `nu`. A root attribute when
        fixed, a `(samples,)` array when drawn per trajectory.
    - Coordinates: `x-coordinate` (`y-`, `z-`) at cell centres `(i + ½) Δx`, as
        PDEBench's files. Our periodic grids hold the nodes `i Δx`; their data is
        exported relabelled by half a cell (`diffphys_x_shift`), which is exact for
        a translation-invariant periodic PDE (every built-in one): the data is then
        the solution from the shifted initial state, a draw of the same
        distribution. `t-coordinate` has one entry more than the frames, as
        PDEBench's files.
    - Sample order test, train, valid: PDEBench takes the first `int(N ·
        test_ratio)` samples as its test set, so with `test_ratio =`
        `diffphys_test_ratio` its test set is ours. `diffphys_splits` records each
        split's `[start, stop)` (JSON). With `split=` only that split is written.

    The file is standalone by default. `virtual=True` writes the arrays as HDF5
    virtual datasets over the shards instead (no copy): they bind by absolute path,
    and an HDF5 reader that cannot find a shard there fills NaN or searches other
    folders (the working directory among them) for a file of the same name, which
    may hold another dataset. `describe` (`diffphys info FILE`) checks every
    source's identity; PDEBench's loaders do not.
    """
    folder, out = Path(folder), Path(out)
    config, manifest = load_manifest(folder)
    sc = config.scenario_obj
    sc.require_grid("PDEBench's tensor layout")
    per_sample = sc.pdebench_layout == "per-sample"
    if per_sample and (out.suffix != ".h5" or virtual):
        raise ValueError(
            f"Scenario {sc.name!r} exports to PDEBench's per-sample layout, which "
            "its FNODatasetMult reads from a name ending in .h5, as a standalone "
            f"file; use `out=` ending in .h5{' without `virtual`' if virtual else ''}."
        )
    if not per_sample and out.suffix != ".hdf5":
        raise ValueError(
            f"`out={str(out)!r}`: PDEBench reads the tensor layout only from names "
            "ending in .hdf5; rename it."
        )
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass `overwrite=True` to replace it.")
    fields = _chosen_fields(sc, field)
    if split is not None:
        split_shards(manifest, split)  # an unknown split name raises, listing them
    order = PER_SAMPLE_ORDER if per_sample else EXPORT_ORDER
    shards = [s for name in order for s in _split(manifest, name, split)]
    if not shards:
        raise ValueError(f"Split {split!r} of {folder} holds no trajectories.")
    counts = [s["samples"][1] - s["samples"][0] for s in shards]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            if per_sample:
                _per_sample(f, config, fields, folder, shards)
            else:
                _single(f, config, fields, folder, shards, sum(counts), virtual)
                _parameters(f, config, folder, shards)
            _record_splits(f, shards, counts, test_last=per_sample)
            f.attrs["diffphys_format"] = PDEBENCH_FORMAT
            f.attrs["diffphys_layout"] = sc.pdebench_layout
            f.attrs["diffphys_config_hash"] = config.hash
            f.attrs["diffphys_dataset"] = str(folder.resolve())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _single(f, config, fields, folder, shards, total, virtual):
    """PDEBench's single-file layout: `tensor` (or one array per field and
    component), a steady scenario's input as `nu` (PDEBench's Darcy files), the
    coordinates."""
    sc = config.scenario_obj
    d, n, frames = sc.num_spatial_dims, config.num_points, config.num_frames
    space = (n,) * d
    arrays = {}  # name in the export -> (source key, component or None, shape)
    for fld in fields:
        if fld.tensor_order == 0:
            name = "tensor" if len(fields) == 1 else fld.name
            arrays[name] = (f"t0_fields/{fld.name}", None, (total, frames) + space)
        else:
            for c, axis in enumerate(AXES[:d]):
                key = f"t1_fields/{fld.name}"
                arrays[f"V{axis}"] = (key, c, (total, frames) + space)
    for fld in sc.constant_fields:
        name = "nu" if len(sc.constant_fields) == 1 else fld.name
        arrays[name] = (
            f"t{fld.tensor_order}_fields/{fld.name}",
            None,
            (total,) + space,
        )
    dtype = np.dtype(config.precision)  # the shards' dtype
    for name, (key, component, shape) in arrays.items():
        _array(f, name, key, component, folder, shards, shape, dtype, virtual)
    _coordinates(f, config, frames)


def _per_sample(f, config, fields, folder, shards):
    """PDEBench's per-sample layout (diffusion–sorption, its FNODatasetMult): a
    group per sample, `NNNN/data` `(T, *N, C)` (the fields stacked on the last
    axis), `NNNN/grid/x` (`y`, `z`) and `NNNN/grid/t`, the sample's parameters as
    the group's attribute `diffphys_params` (JSON)."""
    sc = config.scenario_obj
    coordinate = sc.coordinates(config.num_points, config.domain_extent)
    times = np.arange(config.num_frames) * config.frame_interval
    names = [n for n, _ in config.params]
    width = max(4, len(str(config.num_samples - 1)))
    index = 0
    for shard in shards:
        with h5py.File(folder / shard["path"], "r") as src:
            parts = [
                src[f"t{fld.tensor_order}_fields/{fld.name}"][...] for fld in fields
            ]
            parts = [
                p[..., None] if fld.tensor_order == 0 else p
                for p, fld in zip(parts, fields, strict=True)
            ]
            data = np.concatenate(parts, axis=-1)
            scalars = {
                n: np.broadcast_to(src["scalars"][n][...], data.shape[:1])
                for n in names
            }
        for row in range(data.shape[0]):
            group = f.create_group(f"{index:0{width}d}")
            group.create_dataset("data", data=data[row])
            grid = group.create_group("grid")
            for axis in AXES[: sc.num_spatial_dims]:
                grid[axis] = coordinate.astype(np.float32)
            grid["t"] = times.astype(np.float32)
            group.attrs["diffphys_params"] = json.dumps(
                {n: float(v[row]) for n, v in scalars.items()}
            )
            index += 1


def _chosen_fields(sc, field):
    names = [f.name for f in sc.fields]
    if field is None:
        return list(sc.fields)
    if field not in names:
        raise ValueError(f"`field={field!r}` is not one of {sc.name}'s fields {names}.")
    return [f for f in sc.fields if f.name == field]


def _split(manifest, name, only):
    return split_shards(manifest, name) if only in (None, name) else []


def _array(f, name, key, component, folder, shards, shape, dtype, virtual):
    """The export's array `name`: the shards' `key` (its `component`, if given) in
    order, copied, or as an HDF5 virtual dataset over them by absolute path."""
    layout = h5py.VirtualLayout(shape, dtype) if virtual else None
    data = None if virtual else f.create_dataset(name, shape, dtype)
    first = 0
    for shard in shards:
        count = shard["samples"][1] - shard["samples"][0]
        rows = slice(first, first + count)
        path = (folder / shard["path"]).resolve()
        if virtual:
            full = (
                (count,) + shape[1:] + (() if component is None else (len(shape) - 2,))
            )
            source = h5py.VirtualSource(str(path), key, shape=full)
            layout[rows] = source if component is None else source[..., component]
        else:
            with h5py.File(path, "r") as src:
                block = src[key][...]
            data[rows] = block if component is None else block[..., component]
        first += count
    if virtual:
        f.create_virtual_dataset(name, layout, fillvalue=np.nan)


def _coordinates(f, config, frames):
    sc = config.scenario_obj
    n, length = config.num_points, config.domain_extent
    ours = sc.coordinates(n, length)
    # Periodic data is relabelled to PDEBench's cell centres (see export_pdebench);
    # other grids keep their points (cell centres, or Darcy's nodes).
    periodic = sc.boundary == "periodic"
    points = sc.origin + cell_centres(n, length, periodic=False) if periodic else ours
    for axis in AXES[: sc.num_spatial_dims]:
        f[f"{axis}-coordinate"] = points.astype(np.float32)
    f.attrs["diffphys_x_shift"] = float(points[0] - ours[0])
    f["t-coordinate"] = (np.arange(frames + 1) * config.frame_interval).astype(
        np.float32
    )


def _parameters(f, config, folder, shards):
    sc = config.scenario_obj
    for name, spec in config.params:
        parameter = sc.parameters[name]
        label = parameter.pdebench_name or name
        if not sc.sampler(name, spec).varies:
            f.attrs[label] = float(spec) * parameter.pdebench_scale
            continue
        values = []
        for shard in shards:
            with h5py.File(folder / shard["path"], "r") as src:
                values.append(src["scalars"][name][...])
        f[label] = (np.concatenate(values) * parameter.pdebench_scale).astype(
            np.float32
        )


def _record_splits(f, shards, counts, *, test_last: bool = False):
    spans, first = {}, 0
    for shard, count in zip(shards, counts, strict=True):
        start, _ = spans.get(shard["split"], (first, first))
        spans[shard["split"]] = (start, first + count)
        first += count
    f.attrs["diffphys_splits"] = json.dumps(spans)
    start, stop = spans.get("test", (first, first))
    tests = stop - start
    f.attrs["diffphys_test_ratio"] = pdebench_test_ratio(
        tests, first, test_last=test_last
    )


def pdebench_test_ratio(tests: int, total: int, *, test_last: bool = False) -> float:
    """A ratio `r` whose PDEBench cut takes our `tests` samples: `int(total * r)
    == tests` (single file: the first ones), or `int(total * (1 - r)) == total -
    tests` (per-sample: the last ones); as close to `tests / total` as floating
    point allows."""
    r = tests / total

    def count(r):
        return total - int(total * (1 - r)) if test_last else int(total * r)

    while count(r) < tests:
        r = math.nextafter(r, math.inf)
    while count(r) > tests:
        r = math.nextafter(r, -math.inf)
    return r


def check_export(path: Path, f) -> dict:
    """`describe` of an exported file: every virtual source must exist and belong to
    the dataset the file was exported from (its config hash)."""
    expected = f.attrs["diffphys_config_hash"]
    sources = set()
    for item in f.values():
        if isinstance(item, h5py.Dataset) and item.is_virtual:
            sources.update(vs.file_name for vs in item.virtual_sources())
    for source in sorted(sources):
        if not Path(source).is_file():
            raise ValueError(
                f"{path}: virtual source {source} is missing (it would read as NaN, "
                "or bind a file of that name elsewhere); export again."
            )
        with h5py.File(source, "r") as src:
            if src.attrs.get("diffphys_config_hash") != expected:
                raise ValueError(
                    f"{path}: virtual source {source} belongs to another dataset; "
                    "export again."
                )
    arrays = {
        name: list(item.shape)
        for name, item in f.items()
        if isinstance(item, h5py.Dataset) and not name.endswith("coordinate")
    }
    groups = [name for name, item in f.items() if isinstance(item, h5py.Group)]
    if groups:  # the per-sample layout: one group per sample
        arrays["<sample>/data"] = [len(groups), *f[groups[0]]["data"].shape]
    return {
        "kind": "pdebench",
        "path": str(path),
        "config_hash": expected,
        "dataset": str(f.attrs["diffphys_dataset"]),
        "arrays": arrays,
        "virtual_sources": len(sources),
        "splits": json.loads(f.attrs["diffphys_splits"]),
        "test_ratio": float(f.attrs["diffphys_test_ratio"]),
    }
