"""An independent checker of The Well's per-file schema, written from its documented
specification (`docs/data_format.md` of PolymathicAI/the_well), not from our writer.

`problems(path)` returns a list of violations (empty for a conforming file).
"""

import h5py
import numpy as np


BC_TYPES = {"periodic", "wall", "open"}
GRID_TYPES = {"cartesian", "spherical"}


def _names(value):
    return [
        v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)
    ]


def problems(path) -> list[str]:
    out = []

    def need(condition, message):
        if not condition:
            out.append(message)
        return condition

    with h5py.File(path, "r") as f:
        a = f.attrs
        for key in ("simulation_parameters", "dataset_name", "grid_type"):
            need(key in a, f"root @{key} missing")
        for key in ("n_spatial_dims", "n_trajectories"):
            need(
                key in a and np.issubdtype(np.asarray(a[key]).dtype, np.integer),
                f"root @{key} missing or not an integer",
            )
        if out:
            return out
        need(str(a["grid_type"]) in GRID_TYPES, "grid_type not cartesian/spherical")
        for p in _names(a["simulation_parameters"]):
            need(p in a, f"parameter @{p} listed but absent")
        d, b = int(a["n_spatial_dims"]), int(a["n_trajectories"])

        dims = f["dimensions"]
        axes = _names(dims.attrs["spatial_dims"])
        need(len(axes) == d, "spatial_dims length differs from n_spatial_dims")
        time = dims["time"]
        need("sample_varying" in time.attrs, "time lacks @sample_varying")
        t = time.shape[-1]
        sizes = {}
        for axis in axes:
            x = dims[axis]
            need(x.dtype == np.float32, f"coordinate {axis} is not float32")
            for flag in ("sample_varying", "time_varying"):
                need(flag in x.attrs, f"coordinate {axis} lacks @{flag}")
            sizes[axis] = x.shape[-1]

        for name, g in f["boundary_conditions"].items():
            need(g.attrs["bc_type"] in BC_TYPES, f"bc {name}: unknown bc_type")
            assoc = _names(g.attrs["associated_dims"])
            need(set(assoc) <= set(axes), f"bc {name}: unknown associated_dims")
            need("associated_fields" in g.attrs, f"bc {name}: no associated_fields")
            for flag in ("sample_varying", "time_varying"):
                need(flag in g.attrs, f"bc {name} lacks @{flag}")
            mask = g["mask"][()]
            need(mask.dtype == bool, f"bc {name}: mask not bool")
            need(mask.shape == tuple(sizes[x] for x in assoc), f"bc {name}: mask shape")
            if g.attrs["bc_type"] == "periodic":
                need(bool(mask[0]) and bool(mask[-1]), f"bc {name}: periodic ends")

        scalars = f["scalars"]
        listed = (
            _names(scalars.attrs["field_names"])
            if len(np.atleast_1d(scalars.attrs["field_names"]))
            else []
        )
        need(set(listed) == set(scalars), "scalars field_names differ from datasets")
        for name in listed:
            s = scalars[name]
            sv, tv = bool(s.attrs["sample_varying"]), bool(s.attrs["time_varying"])
            expected = (b,) * sv + (t,) * tv
            need(
                s.shape in (expected, expected or (1,)),
                f"scalar {name} shape {s.shape}",
            )

        for order in range(3):
            g = f[f"t{order}_fields"]
            raw = np.atleast_1d(g.attrs["field_names"])
            listed = _names(raw) if raw.size else []
            need(set(listed) == set(g), f"t{order}_fields names differ from datasets")
            for name in listed:
                x = g[name]
                need(x.dtype == np.float32, f"{name} not float32")
                dv = [bool(v) for v in x.attrs["dim_varying"]]
                need(len(dv) == d, f"{name}: dim_varying length")
                sv, tv = bool(x.attrs["sample_varying"]), bool(x.attrs["time_varying"])
                space = tuple(sizes[ax] for ax, v in zip(axes, dv, strict=True) if v)
                expected = (b,) * sv + (t,) * tv + space + (d,) * order
                need(x.shape == expected, f"{name} shape {x.shape} != {expected}")
    return out
