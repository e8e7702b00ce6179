from rich.console import Console
from rich.table import Table


def show_info(summary: dict) -> None:
    """Print `describe`'s summary as rich tables."""
    console = Console(soft_wrap=True)
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
            f"boundaries {', '.join(summary['boundary_conditions'])}"
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
    console.print(
        f"grid {config['num_points']} points on [0, {config['domain_extent']}), "
        f"{config['num_steps'] + 1} frames {config['dt'] * config['save_every']:.4g} "
        f"apart, dt {config['dt']:.4g}, {config['precision']}, seed {config['seed']}, "
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
    if isinstance(value, list):
        return ", ".join(f"{v:.{digits}g}" for v in value)
    return "-" if value is None else f"{value:.{digits}g}"
