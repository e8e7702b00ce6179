import os
from pathlib import Path

import h5py
import numpy as np

from ._folder import load_manifest, split_shards
from ._well import AXES


def export_pdebench(
    folder,
    out,
    *,
    copy: bool = False,
    field: str | None = None,
    split: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a dataset folder in PDEBench's single-file layout.

    `tensor` `(samples, time, *space)` of one scalar field (the dataset's precision,
    float32 by default), `x-coordinate`
    (and `y-`, `z-`), `t-coordinate` with one entry per frame (PDEBench's own files
    carry one too many), and the parameters: a root attribute under PDEBench's name
    (`Nu` for Burgers) when fixed, a `(samples,)` dataset of that name when drawn per
    trajectory. Samples are the splits' trajectories in order (train, valid, test),
    or one `split`.

    By default `tensor` is an HDF5 virtual dataset over the shards (relative paths:
    move the folder and the file together); `copy=True` writes a standalone file.
    Every shard is checked to be in place first, since a virtual dataset would read
    a missing one silently as fill values. The file name must end in `.hdf5`
    (PDEBench's loader picks its layout from the extension).
    """
    folder, out = Path(folder), Path(out)
    if out.suffix != ".hdf5":
        raise ValueError(
            f"--out {out}: PDEBench reads the tensor layout only from names ending in "
            ".hdf5; rename it."
        )
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it.")
    config, manifest = load_manifest(folder)
    sc = config.scenario_obj
    scalar_fields = [f.name for f in sc.fields if f.tensor_order == 0]
    if field is None:
        if len(scalar_fields) != 1:
            raise ValueError(
                f"Scenario {sc.name!r} has scalar fields {scalar_fields}; name one "
                "with --field (vector fields have no PDEBench tensor layout)."
            )
        field = scalar_fields[0]
    if field not in scalar_fields:
        raise ValueError(
            f"--field {field!r} is not one of the scalar fields {scalar_fields}."
        )
    shards = split_shards(manifest, split)
    if not shards:
        raise ValueError(f"Split {split!r} of {folder} holds no trajectories.")
    counts = [s["samples"][1] - s["samples"][0] for s in shards]
    d, n, frames = sc.num_spatial_dims, config.num_points, config.num_frames
    shape = (sum(counts), frames) + (n,) * d
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            key = f"t0_fields/{field}"
            if copy:
                tensor = f.create_dataset(
                    "tensor", shape, config.precision, chunks=(1,) + shape[1:]
                )
                first = 0
                for shard, count in zip(shards, counts, strict=True):
                    with h5py.File(folder / shard["path"], "r") as src:
                        tensor[first : first + count] = src[key][...]
                    first += count
            else:
                layout = h5py.VirtualLayout(shape, config.precision)
                first = 0
                for shard, count in zip(shards, counts, strict=True):
                    source = os.path.relpath(folder / shard["path"], out.parent)
                    layout[first : first + count] = h5py.VirtualSource(
                        source, key, shape=(count,) + shape[1:]
                    )
                    first += count
                f.create_virtual_dataset("tensor", layout, fillvalue=np.nan)
            coordinate = config.scenario_obj.coordinates(n, config.domain_extent)
            for axis in AXES[:d]:
                f[f"{axis}-coordinate"] = coordinate.astype(np.float32)
            f["t-coordinate"] = (np.arange(frames) * config.frame_interval).astype(
                np.float32
            )
            for name, spec in config.params:
                label = sc.parameters[name].pdebench_name or name
                if not sc.sampler(name, spec).varies:
                    f.attrs[label] = float(spec)
                    continue
                values = []
                for shard in shards:
                    with h5py.File(folder / shard["path"], "r") as src:
                        values.append(src["scalars"][name][...])
                f[label] = np.concatenate(values).astype(np.float32)
            f.attrs["diffphys_config_hash"] = config.hash
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
