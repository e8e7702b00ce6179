import json
import os
import platform
from pathlib import Path

import numpy as np

from .._store import atomic_write, claim_folder
from . import _metrics
from ._engine import Evaluation, metric_notes


REPORT_FILES = (
    "metrics.json",
    "report.md",
    "error_vs_step.png",
    "correlation_vs_step.png",
    "spectra.png",
)
_MARKER = "diffphys.evaluation/1"


def _prepare(out: Path, overwrite: bool) -> None:
    """Claim `out` for a report: a previous report is replaced only with
    `overwrite=True`, a folder of anything else never."""

    def compare(folder):
        try:
            text = (folder / "metrics.json").read_text()
            ours = json.loads(text).get("format") == _MARKER
        except (OSError, ValueError):
            ours = False
        return "written before" if ours else None

    def owned():
        return [
            p
            for p in out.iterdir()
            if p.name in REPORT_FILES or p.name.startswith("heatmaps_")
        ]

    claim_folder(out, kind="report", compare=compare, owned=owned, overwrite=overwrite)


def _per_step(evaluation: Evaluation) -> dict:
    out = {}
    for name, values in evaluation.metrics.items():
        stats = _metrics.summarise(values)
        out[name] = {
            "mean": stats["mean"],
            "q10": stats["quantiles"][0],
            "median": stats["quantiles"][1],
            "q90": stats["quantiles"][2],
        }
    for band, label in enumerate(("low", "mid", "high")):
        stats = _metrics.summarise(evaluation.spectral[..., band])
        out[f"spectral_rmse_{label}"] = {
            "mean": stats["mean"],
            "median": stats["quantiles"][1],
        }
    return {k: {s: v.tolist() for s, v in d.items()} for k, d in out.items()}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_report(
    evaluations: list[Evaluation],
    out,
    *,
    command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `metrics.json` (per-step arrays and summaries per model, the command,
    versions and the dataset's config hash), PNG plots and `report.md` comparing the
    models side by side into the folder `out`. All evaluations must be of the same
    dataset split and horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not evaluations:
        raise ValueError("Nothing to report: no evaluations.")
    first = evaluations[0]
    for e in evaluations[1:]:
        if (e.config.hash, e.split, e.num_steps) != (
            first.config.hash,
            first.split,
            first.num_steps,
        ):
            raise ValueError("All evaluations must share the dataset, split and steps.")
    names = [e.name for e in evaluations]
    if len(set(names)) != len(names):
        raise ValueError(f"Model names must differ, got {names}.")
    out = Path(out)
    _prepare(out, overwrite)
    summaries = {e.name: e.summary() for e in evaluations}
    metrics = _metrics_record(first, evaluations, summaries, command)
    text = json.dumps(_clean(metrics), indent=1, allow_nan=False)
    atomic_write(out / "metrics.json", text)
    _curves(first, evaluations, out, plt)
    if first.config.scenario_obj.boundary == "periodic":
        _spectra(first, evaluations, out, plt)
    heatmaps = []
    for e in evaluations:
        path = out / f"heatmaps_{_slug(e.name)}.png"
        _heatmaps(e, path, plt)
        heatmaps.append(path.name)
    markdown = _markdown(first, evaluations, summaries, heatmaps, command)
    atomic_write(out / "report.md", markdown)
    return out


def _metrics_record(first, evaluations, summaries, command) -> dict:
    """`metrics.json`: per-step arrays and summaries per model, the command,
    versions and the dataset's identity."""
    import jax

    from .. import __version__

    return {
        "format": _MARKER,
        "command": command,
        "versions": {
            "diffphys": __version__,
            "jax": jax.__version__,
            "python": platform.python_version(),
            "device": jax.devices()[0].device_kind,
        },
        "dataset": {
            "path": os.path.abspath(first.dataset),
            "scenario": first.config.scenario,
            "config_hash": first.config.hash,
            "split": first.split,
            "num_trajectories": int(first.blowup.size),
        },
        "steps": first.num_steps,
        "frame_interval": first.config.frame_interval,
        "correlation_threshold": first.threshold,
        "excluded": "nothing: each steady sample's solution is scored once"
        if first.config.scenario_obj.steady
        else "the initial frame (given to every model) is not scored",
        "models": {
            e.name: {
                "summary": summaries[e.name],
                "blowup_steps": e.blowup.tolist(),
                "per_step": _per_step(e),
            }
            for e in evaluations
        },
    }


def _curves(first, evaluations, out: Path, plt) -> None:
    """nRMSE and correlation against time: median and 10–90 % band per model."""
    time = first.time
    for metric, ylabel, log, filename in [
        ("nrmse", "nRMSE", True, "error_vs_step.png"),
        ("correlation", "Pearson correlation", False, "correlation_vs_step.png"),
    ]:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for e in evaluations:
            q = _metrics.summarise(e.metrics[metric])["quantiles"]
            if log:  # a perfect model's zeros have no place on a log axis
                q = np.where(q > 0, q, np.nan)
            # A steady dataset's one point needs a marker to be seen.
            marker = "o" if len(time) == 1 else None
            (line,) = ax.plot(time, q[1], label=e.name, marker=marker)
            ax.fill_between(time, q[0], q[2], color=line.get_color(), alpha=0.2)
        if metric == "correlation":
            ax.axhline(first.threshold, color="k", ls="--", lw=0.8)
        if (
            log
            and np.isfinite(np.concatenate([ln.get_ydata() for ln in ax.lines])).any()
        ):
            ax.set_yscale("log")
        ax.set(
            xlabel="t",
            ylabel=ylabel,
            title=f"{ylabel}: median, 10–90 % band ({first.blowup.size} samples)",
        )
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)


def _spectra(first, evaluations, out: Path, plt) -> None:
    """Energy spectra of truth and each model at the spectrum steps."""
    steps = first.spectra["steps"]
    fig, axes = plt.subplots(
        1, len(steps), figsize=(4 * len(steps), 3.4), squeeze=False
    )
    for ax, i, step in zip(axes[0], range(len(steps)), steps, strict=True):
        k = np.arange(first.spectra["truth"].shape[-1])
        ax.loglog(k[1:], first.spectra["truth"][i][1:], "k", lw=2, label="truth")
        for e in evaluations:
            ax.loglog(k[1:], e.spectra["prediction"][i][1:], lw=1, label=e.name)
        ax.set(
            xlabel="k",
            ylabel="E(k)",
            title=f"t = {step * first.config.frame_interval:.3g}",
        )
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "spectra.png", dpi=110)
    plt.close(fig)


def _clean(obj):
    """JSON-safe: NaN/inf become null, NumPy scalars plain numbers."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def heatmap_panels(e: Evaluation) -> list[list[dict]]:
    """The heatmaps' grid, row by row; each panel a dict `title`, `data` (2D),
    `extent`, `xlabel`, `ylabel`. 1D: space-time plots of truth, prediction and
    |error| per example and channel. 2D/3D: per example (at most two) and channel,
    truth and prediction at mid-horizon and at the end, and the |error| at the end
    (3D: the slice z = 0)."""
    truth, pred = e.examples["truth"], e.examples["prediction"]
    d = truth.ndim - 3
    names = e.config.scenario_obj.channel_names
    L, dt, T = e.config.domain_extent, e.config.frame_interval, e.num_steps
    rows = []
    if d == 1:
        for r in range(truth.shape[0]):
            for c, name in enumerate(names):
                tr, pr = truth[r, :, c].T, pred[r, :, c].T
                common = {"extent": (0, T * dt, 0, L), "xlabel": "t", "ylabel": "x"}
                rows.append(
                    [
                        {"title": f"truth {name}, sample {r}", "data": tr, **common},
                        {"title": f"prediction {name}", "data": pr, **common},
                        {"title": f"|error| {name}", "data": np.abs(pr - tr), **common},
                    ]
                )
        return rows
    where = "" if d == 2 else " (z = 0)"
    common = {"extent": (0, L, 0, L), "xlabel": "x", "ylabel": "y"}
    steady = e.config.scenario_obj.steady
    # A steady sample has one frame, the solution.
    frames, last = ([0], 0) if steady else (sorted({max(T // 2, 1), T}), T)

    def when(k):
        return "solution" if steady else f"t = {k * dt:.3g}"

    for r in range(min(2, truth.shape[0])):
        for c, name in enumerate(names):
            row = []
            for k in frames:
                index = (r, k, c) + (slice(None),) * 2 + (0,) * (d - 2)
                for what, data in (("truth", truth), ("prediction", pred)):
                    row.append(
                        {
                            "title": f"{what} {name}{where}, {when(k)}, sample {r}",
                            "data": data[index],
                            **common,
                        }
                    )
            index = (r, last, c) + (slice(None),) * 2 + (0,) * (d - 2)
            row.append(
                {
                    "title": f"|error| {name}, {when(last)}",
                    "data": np.abs(pred[index] - truth[index]),
                    **common,
                }
            )
            rows.append(row)
    return rows


def _heatmaps(e: Evaluation, path: Path, plt) -> None:
    rows = heatmap_panels(e)
    columns = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(3.7 * columns, 2.7 * len(rows)), squeeze=False
    )
    for axes_row, row in zip(axes, rows, strict=True):
        limit = np.nanmax(np.abs(row[0]["data"]))
        for ax, panel in zip(axes_row, row, strict=False):
            error = panel["title"].startswith("|error|")
            options = (
                {"cmap": "magma", "vmin": 0}
                if error
                else {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
            )
            im = ax.imshow(
                panel["data"],
                aspect="auto",
                origin="lower",
                extent=panel["extent"],
                **options,
            )
            ax.set(xlabel=panel["xlabel"], ylabel=panel["ylabel"])
            ax.set_title(panel["title"], fontsize=8)
            fig.colorbar(im, ax=ax)
        for ax in axes_row[len(row) :]:
            ax.axis("off")
    fig.suptitle(e.name)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _markdown(first, evaluations, summaries, heatmaps, command) -> str:
    c = first.config
    notes = metric_notes(c)
    if c.scenario_obj.steady:
        what = (
            f"{first.blowup.size} samples of a steady problem, {c.num_points} points, "
            f"dataset config `{c.hash}`. Each model maps a sample's inputs to its "
            "solution, scored once."
        )
    else:
        what = (
            f"{first.blowup.size} trajectories, {first.num_steps} steps of "
            f"{c.frame_interval:.4g} (t = {first.num_steps * c.frame_interval:.4g}), "
            f"{c.num_points} points, dataset config `{c.hash}`. Each model starts "
            "from the true initial frame, which is not scored."
        )
    lines = [f"# Rollout evaluation: {c.scenario}, {first.split} split", "", what, ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    header = (
        f"| model | nRMSE geo-mean (first {min(100, first.num_steps)} steps) | "
        "nRMSE final | VRMSE final | "
        f"corr. final | time corr. ≥ {first.threshold} | mass drift max | "
        "max-principle excess | blow-ups | traj·steps/s |"
    )
    lines += [header, "|" + "---|" * 10]
    for e in evaluations:
        s = summaries[e.name]
        lines.append(
            f"| `{e.name}` | {s['nrmse_geometric_mean']:.3g} | "
            f"{s['nrmse_final_median']:.3g} | {s['vrmse_final_median']:.3g} | "
            f"{s['correlation_final_median']:.4f} | "
            f"{s['high_correlation_time_median']:.3g} | {s['mass_drift_max']:.2g} | "
            f"{s['max_principle_violation_max']:.2g} | {s['blowups']} | "
            f"{s['trajectory_steps_per_s']:.3g} |"
        )
    lines += [
        "",
        "Medians over trajectories; nRMSE is exponax/APEBench's (channel-summed "
        "‖error‖/‖truth‖), VRMSE The Well's; the geometric mean is over the per-step "
        f"median. Mass drift: {notes['mass_drift']}. Max-principle excess: "
        f"{notes['max_principle_violation']}. Spectral errors: {notes['spectral']}.",
        "",
        "![nRMSE vs step](error_vs_step.png)",
        "![correlation vs step](correlation_vs_step.png)",
        "![energy spectra](spectra.png)"
        if c.scenario_obj.boundary == "periodic"
        else "(No energy spectra: the domain is not periodic.)",
        "",
    ]
    lines += [f"![{name}]({name})" for name in heatmaps]
    return "\n".join(lines) + "\n"
