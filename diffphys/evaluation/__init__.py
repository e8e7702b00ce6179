"""Rollout evaluation: per-step metrics, a rollout engine for any model on any
dataset split, plots and reports.

- Metrics on trajectories `(T, C, *N)` → `(T,)`: `rmse`, `nrmse` (exponax/APEBench),
  `vrmse` (The Well), `correlation` (Pearson) and `high_correlation_steps`,
  `mass_drift`, `spectral_errors` (PDEBench bands), `max_principle_violation`,
  `blowup_step`, `energy_spectrum`; aggregation with `summarise` and `geometric_mean`.
- `evaluate(model, DIR, split=, num_steps=)` → `Evaluation`; models are steppers
  `u -> u_next`, `SolverBaseline`s or spec strings (`solver:burgers:num_points=128`).
- `write_report([...], OUT)`: `metrics.json`, PNGs and `report.md`
  (`diffphys evaluate` on the command line).
"""

from ._engine import (
    AbstractModel as AbstractModel,
    evaluate as evaluate,
    Evaluation as Evaluation,
    parse_model as parse_model,
    regrid as regrid,
    resample as resample,
    SolverBaseline as SolverBaseline,
    Stepper as Stepper,
)
from ._metrics import (
    blowup_step as blowup_step,
    correlation as correlation,
    energy_spectrum as energy_spectrum,
    geometric_mean as geometric_mean,
    high_correlation_steps as high_correlation_steps,
    mass_drift as mass_drift,
    max_principle_violation as max_principle_violation,
    nrmse as nrmse,
    PDEBENCH_BANDS as PDEBENCH_BANDS,
    rmse as rmse,
    spectral_errors as spectral_errors,
    summarise as summarise,
    vrmse as vrmse,
)
from ._report import write_report as write_report
