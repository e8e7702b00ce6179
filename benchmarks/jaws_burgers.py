"""Long rollouts of FNOs trained three ways on viscous Burgers, and DyMixOp vs FNO at
a matched parameter count, with an equal training budget (same optimiser steps and
batch size).

Data: `diffphys generate burgers` (pseudo-spectral ETDRK2, PDEBench sine sums,
ν = 0.01), N = 256, frames 0.01 apart, 1000 train / 100 valid / 100 test
trajectories of 200 steps: the full size, the default on a GPU. On a CPU the default
is `--size small`: N = 128, 64 / 16 / 16 trajectories of 100 steps, 300 steps.

Settings (every model residual, AdamW warmup-cosine, clipping 1, validation-split
selection):

- (a) FNO, `one`-step training;
- (b) FNO, long-horizon `sup-K_long` (the anchor);
- (c) FNO, short-horizon `sup-K_short` + the JAWS-style penalty (a reconstruction
  from the paper's abstract; no number here is the paper's);
- (d) DyMixOp, `one`-step, width chosen to match (a)'s parameter count;
- (e) FNO, `sup-K_short` without a penalty (the ablation of (c));
- (f) DyMixOp as (d), trained `sup-K_short`.

Printed per setting: median test nRMSE at steps 10/50/100/200, median
high-correlation time (correlation > 0.8), training seconds, and peak training
memory as the compiled step's temporaries (XLA's memory analysis: the activations
held for the backward pass). One JSON line; ratios of (c) against the anchor (b).
"""

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import diffphys as dp


def matched_width(target: int, config, data) -> int:
    """The DyMixOp width whose parameter count is closest to `target`."""
    best = None
    for width in range(4, 129, 2):
        cfg = dp.training.TrainConfig(**{**config, "model": "dymixop", "width": width})
        count = dp.operators.count_parameters(
            dp.training.build_model(cfg, data, tau=0.1)
        )
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (width, count)
    return best[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        choices=["auto", "small", "full"],
        default="auto",
        help="full on a GPU, small (CPU-sized) otherwise.",
    )
    parser.add_argument("--steps", type=int, default=None, help="Optimiser steps.")
    parser.add_argument("--out", type=Path, default=None, help="Keep runs here.")
    parser.add_argument("--only", default="a,b,c,d,e,f")
    parser.add_argument("--jaws-weight", type=float, default=1e-2)
    opts = parser.parse_args()
    small = opts.size == "small" or (
        opts.size == "auto" and jax.default_backend() == "cpu"
    )
    if small:
        n, train, test, frames, steps = 128, 64, 16, 100, opts.steps or 300
        long_k, short_k, width, modes, batch = 8, 2, 16, 12, 16
    else:
        n, train, test, frames, steps = 256, 1000, 100, 200, opts.steps or 3000
        long_k, short_k, width, modes, batch = 16, 4, 32, 16, 32
    total = train + 2 * test
    root = opts.out or Path(tempfile.mkdtemp(prefix="diffphys-jaws-"))
    data = root / "data"
    start = time.perf_counter()
    config = dp.datasets.make_config(
        "burgers",
        num_samples=total,
        num_points=n,
        num_steps=frames,
        split=f"{train / total},{test / total},{test / total}",
        params={"nu": "0.01"},
    )
    dp.datasets.generate(config, data, progress=False)
    generation_s = time.perf_counter() - start

    common = dict(
        num_train_steps=steps,
        batch_size=batch,
        width=width,
        modes=modes,
        num_layers=4,
        learning_rate=1e-3,
        valid_num_steps=min(50, frames),
    )
    fno_params = dp.operators.count_parameters(
        dp.training.build_model(dp.training.TrainConfig(**common), config, tau=0.1)
    )
    settings = {
        "a": dict(common, mode="one"),
        "b": dict(common, mode=f"sup-{long_k}"),
        "c": dict(
            common, mode=f"sup-{short_k}", jaws=True, jaws_weight=opts.jaws_weight
        ),
        "d": dict(
            common,
            mode="one",
            model="dymixop",
            width=matched_width(fno_params, common, config),
        ),
        "e": dict(common, mode=f"sup-{short_k}"),
    }
    settings["f"] = dict(settings["d"], mode=f"sup-{short_k}")
    results = {}
    for name in opts.only.split(","):
        train_config = dp.training.TrainConfig(**settings[name])
        run = root / f"run-{name}"
        summary = dp.training.train(
            train_config, data, run, overwrite=True, progress=False
        ).summary
        model = dp.training.load_run(run, name=name)
        evaluation = dp.evaluation.evaluate(model, data, split="test", num_steps=frames)
        median = np.median(evaluation.metrics["nrmse"], axis=0)
        headline = evaluation.summary()
        results[name] = {
            "model": train_config.model,
            "mode": train_config.mode,
            "jaws": train_config.jaws,
            "parameters": summary["parameters"],
            "nrmse_median_at": {
                str(k): float(median[k - 1]) for k in (10, 50, 100, 200) if k <= frames
            },
            "high_correlation_time": headline["high_correlation_time_median"],
            "blowups": headline["blowups"],
            "train_seconds": summary["seconds"],
            "peak_train_temp_MiB": round(
                summary["compiled_step_bytes"]["temp"] / 2**20, 2
            ),
            "best_valid_nrmse": summary["best_valid_nrmse"],
        }
        print(json.dumps({"setting": name, **results[name]}), flush=True)
    last = str(max(k for k in (10, 50, 100, 200) if k <= frames))
    line = {
        "benchmark": "jaws_burgers",
        "device": jax.devices()[0].device_kind,
        "platform": platform.machine(),
        "size": "small" if small else "full",
        "num_points": n,
        "train_trajectories": train,
        "test_trajectories": test,
        "rollout_steps": frames,
        "optimiser_steps": steps,
        "batch_size": batch,
        "horizons": {"long": long_k, "short": short_k},
        "generation_seconds": round(generation_s, 1),
        "settings": results,
    }
    if "b" in results and "c" in results:
        b, c = results["b"], results["c"]
        line["ratio_c_over_b"] = {
            f"nrmse_at_{last}": c["nrmse_median_at"][last] / b["nrmse_median_at"][last],
            "peak_train_memory": c["peak_train_temp_MiB"] / b["peak_train_temp_MiB"],
            "train_seconds": c["train_seconds"] / b["train_seconds"],
        }
    print(json.dumps(line))
    if opts.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
