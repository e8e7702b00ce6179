from pathlib import Path

import h5py
import numpy as np
import yaml

from ._export import check_export, PDEBENCH_FORMAT
from ._folder import load_manifest, STATS
from ._well import check_file, str_list


def _file_summary(f) -> dict:
    fields = {}
    for group in ("t0_fields", "t1_fields", "t2_fields"):
        for name in str_list(f[group].attrs["field_names"]):
            data = f[group][name]
            fields[name] = {
                "group": group,
                "shape": list(data.shape),
                "dtype": str(data.dtype),
            }
    scalars = {}
    for name in str_list(f["scalars"].attrs["field_names"]):
        values = np.atleast_1d(f["scalars"][name][()])
        scalars[name] = (
            float(values[0])
            if values.size == 1
            else [float(values.min()), float(values.max())]
        )
    time = f["dimensions/time"][()]
    dims = f["dimensions"].attrs
    return {
        "grid_type": str(f.attrs["grid_type"]),
        # Per-entity data (ours): the entity axes, e.g. ["body"].
        "entity_dims": str_list(dims["entity_dims"]) if "entity_dims" in dims else [],
        "dataset_name": str(f.attrs["dataset_name"]),
        "n_spatial_dims": int(f.attrs["n_spatial_dims"]),
        "n_trajectories": int(f.attrs["n_trajectories"]),
        "n_frames": int(time.shape[-1]),
        "time": [float(time[0]), float(time[-1])],
        "boundary_conditions": sorted(f["boundary_conditions"]),
        "fields": fields,
        "scalars": scalars,
    }


def _is_export(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("diffphys_format") == PDEBENCH_FORMAT
    except OSError:  # not HDF5: `check_file` says so
        return False


def describe(path, *, verify: bool = True, progress: bool | None = None) -> dict:
    """Check a The Well-format file, a file of `export_pdebench` (each virtual
    source in place and of the exported dataset), or a whole dataset folder
    (manifest, every shard's schema and size, and unless `verify=False` its
    checksum, under a progress bar), and summarise it. A shard corrupted without a
    change of size passes every check but the checksum. Raises a `ValueError` (a
    `SchemaError` for files) with a one-line reason."""
    path = Path(path)
    if path.is_file() and _is_export(path):
        with h5py.File(path, "r") as f:
            return check_export(path, f)
    if path.is_file():
        with check_file(path) as f:
            return {"kind": "file", "path": str(path), **_file_summary(f)}
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder.")
    config, manifest = load_manifest(path, verify=verify, progress=progress)
    splits = {}
    summary = None
    for shard in manifest["shards"]:
        with check_file(path / shard["path"]) as f:
            if f.attrs.get("diffphys_config_hash") != config.hash:
                raise ValueError(f"{path / shard['path']} belongs to another dataset.")
            summary = summary or _file_summary(f)
        entry = splits.setdefault(shard["split"], {"files": 0, "trajectories": 0})
        entry["files"] += 1
        entry["trajectories"] += shard["samples"][1] - shard["samples"][0]
    stats_path = path / STATS
    stats = yaml.safe_load(stats_path.read_text()) if stats_path.is_file() else None
    return {
        "kind": "folder",
        "path": str(path),
        "dataset_name": manifest["dataset_name"],
        "config_hash": config.hash,
        "config": config.to_dict(),
        "splits": splits,
        "steady": config.scenario_obj.steady,
        "entity_dims": summary["entity_dims"] if summary else [],
        "fields": {
            name: {**v, "shape": ["n"] + v["shape"][1:]}
            for name, v in (summary["fields"] if summary else {}).items()
        },
        "verified_checksums": verify,
        "stats": stats,
    }
