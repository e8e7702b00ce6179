import json
import os
import platform
from pathlib import Path

import numpy as np

from .._store import atomic_write, claim_folder
from . import _metrics
from ._engine import Evaluation


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
        "excluded": "the initial frame (given to every model) is not scored",
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
            (line,) = ax.plot(time, q[1], label=e.name)
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


def _heatmaps(e: Evaluation, path: Path, plt) -> None:
    truth, pred = e.examples["truth"], e.examples["prediction"]
    rows = truth.shape[0]
    d = truth.ndim - 3
    fig, axes = plt.subplots(rows, 3, figsize=(11, 2.6 * rows), squeeze=False)
    t_end = e.num_steps * e.config.frame_interval
    L = e.config.domain_extent
    for r in range(rows):
        if d == 1:
            panels = [
                truth[r, :, 0].T,
                pred[r, :, 0].T,
                np.abs(pred[r, :, 0] - truth[r, :, 0]).T,
            ]
            extent = (0, t_end, 0, L)
            xlabel, ylabel = "t", "x"
        else:  # final-step snapshot of channel 0
            index = (r, -1, 0) + (slice(None),) * 2 + (0,) * (d - 2)
            panels = [truth[index], pred[index], np.abs(pred[index] - truth[index])]
            extent = (0, L, 0, L)
            xlabel, ylabel = "x", "y"
        limit = np.nanmax(np.abs(panels[0]))
        for c, (ax, panel, title) in enumerate(
            zip(axes[r], panels, ("truth", "prediction", "|error|"), strict=True)
        ):
            options = (
                {"cmap": "magma", "vmin": 0}
                if c == 2
                else {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
            )
            im = ax.imshow(
                panel, aspect="auto", origin="lower", extent=extent, **options
            )
            ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title}, sample {r}")
            fig.colorbar(im, ax=ax)
    fig.suptitle(e.name)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _markdown(first, evaluations, summaries, heatmaps, command) -> str:
    c = first.config
    lines = [
        f"# Rollout evaluation: {c.scenario}, {first.split} split",
        "",
        f"{first.blowup.size} trajectories, {first.num_steps} steps of "
        f"{c.frame_interval:.4g} (t = {first.num_steps * c.frame_interval:.4g}), "
        f"{c.num_points} points, dataset config `{c.hash}`. Each model starts from the "
        "true initial frame, which is not scored.",
        "",
    ]
    if command:
        lines += [f"Command: `{command}`", ""]
    header = (
        "| model | nRMSE geo-mean (first 100 steps) | nRMSE final | VRMSE final | "
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
        "median; mass drift is |∫u(t) − ∫u(0)|.",
        "",
        "![nRMSE vs step](error_vs_step.png)",
        "![correlation vs step](correlation_vs_step.png)",
        "![energy spectra](spectra.png)",
        "",
    ]
    lines += [f"![{name}]({name})" for name in heatmaps]
    return "\n".join(lines) + "\n"
