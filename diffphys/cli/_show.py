from rich.console import Console
from rich.table import Table


def show_info(summary: dict) -> None:
    """Print `describe`'s summary as rich tables."""
    console = Console(soft_wrap=True)
    if summary["kind"] == "pdebench":
        console.print(
            f"[bold]{summary['path']}[/]: PDEBench export of {summary['dataset']} "
            f"(config {summary['config_hash']}), "
            f"{summary['virtual_sources']} virtual sources checked"
        )
        for name, shape in summary["arrays"].items():
            console.print(f"{name}: {tuple(shape)}")
        console.print(
            f"splits {summary['splits']}; PDEBench test_ratio {summary['test_ratio']!r}"
        )
        return
    console.print(
        f"[bold]{summary['path']}[/]: valid The Well-format {summary['kind']}"
    )
    console.print(f"dataset [bold]{summary['dataset_name']}[/]")
    fields = Table("field", "group", "shape", "dtype", title="fields")
    for name, v in summary["fields"].items():
        fields.add_row(name, v["group"], str(tuple(v["shape"])), v["dtype"])
    console.print(fields)
    if summary["kind"] == "file":
        console.print(
            f"{summary['n_trajectories']} trajectories, {summary['n_frames']} frames, "
            f"t in [{_fmt(summary['time'][0])}, {_fmt(summary['time'][1])}], "
            f"boundaries {', '.join(summary['boundary_conditions']) or 'none'}"
        )
        for name, value in summary["scalars"].items():
            console.print(f"parameter {name}: {_fmt(value)}")
        return
    config = summary["config"]
    splits = Table("split", "files", "trajectories", title="splits")
    for name, v in summary["splits"].items():
        splits.add_row(name, str(v["files"]), str(v["trajectories"]))
    console.print(splits)
    for name, spec in config["params"].items():
        console.print(f"parameter {name}: {spec}")
    if summary["entity_dims"]:
        entity = "/".join(summary["entity_dims"])
        space = (
            f"{config['num_points']} {entity} entities (per-{entity} fields), "
            f"domain extent {config['domain_extent']}"
        )
    else:
        space = f"grid {config['num_points']} points on [0, {config['domain_extent']})"
    interval = config["dt"] * config["save_every"]
    if summary.get("steady"):
        horizon = "steady: inputs (constant fields) and one solution frame per sample"
    else:
        horizon = (
            f"{config['num_steps'] + 1} frames {interval:.4g} apart, dt "
            f"{config['dt']:.4g}"
        )
    console.print(
        f"{space}, {horizon}, {config['precision']}, seed {config['seed']}, "
        f"config {summary['config_hash']}"
    )
    if summary["stats"]:
        stats = Table("field", *summary["stats"], title="stats (train split)")
        for field in summary["stats"]["mean"]:
            stats.add_row(
                field,
                *(_fmt(summary["stats"][k].get(field), 4) for k in summary["stats"]),
            )
        console.print(stats)


def _fmt(value, digits: int = 6) -> str:
    if isinstance(value, list):  # vectors, and tensors as lists of rows
        return ", ".join(
            f"[{_fmt(v, digits)}]" if isinstance(v, list) else f"{v:.{digits}g}"
            for v in value
        )
    return "-" if value is None else f"{value:.{digits}g}"


def show_scenarios(summaries: list[dict]) -> None:
    """Print `Scenario.summary()`s: one block per scenario (their text as it is,
    never read as rich markup)."""
    console = Console(soft_wrap=True, markup=False, highlight=False)
    for s in summaries:
        console.print(f"{s['name']} ({s['num_spatial_dims']}D): {s['description']}")
        fields = ", ".join(f"{k} ({v})" for k, v in s["fields"].items())
        d = s["defaults"]
        points = f"{s['entities']} entities" if "entities" in s else "points"
        if s.get("steady"):
            inputs = ", ".join(f"{k} ({v})" for k, v in s["constant_fields"].items())
            horizon = f"steady: inputs {inputs} -> one solution frame"
        else:
            horizon = f"{d['num_steps']} steps {_fmt(d['frame_interval'])} apart"
        console.print(
            f"  fields {fields}; {s['boundary']} boundary; domain "
            f"[{_fmt(d['domain'][0])}, {_fmt(d['domain'][1])}], "
            f"{d['num_points']} {points}, {horizon}, {d['num_samples']} samples"
            + ("; exact solution (--source exact)" if s["exact_solution"] else "")
        )
        for name, p in s["parameters"].items():
            console.print(
                f"  --param {name}={p['default']}  admissible {p['admissible']}: "
                f"{p['description']}"
            )
        console.print(f"  defaults from: {s['defaults_from']}")
        if s["module"]:
            console.print(f"  defined in module {s['module']}")
