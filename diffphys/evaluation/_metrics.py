"""Per-step metrics of a predicted trajectory against the truth.

Every metric takes trajectories `(T, C, *N)` (unbatched, channels first; the number
of spatial dimensions is `ndim - 2`) and returns one value per step, shape `(T,)`
(the spectral errors `(T, num_bands)`; `vrmse`, as The Well reports it, one per
channel, `(T, C)`). Batch with `jax.vmap`. Norms are the
consistent discretisation of L² on the periodic box; the cell volume cancels in
every ratio.
"""

import warnings

import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, Trajectory
from ..solvers import wavenumbers


# The Well's ε of its variance-scaled errors.
VARIANCE_EPS = 1e-7
# PDEBench's fRMSE bands of integer wavenumber magnitude: low, mid, high.
PDEBENCH_BANDS = ((0, 4), (4, 12), (12, None))


def _space(u) -> tuple[int, ...]:
    if u.ndim < 3:
        raise ValueError(
            f"Expected a trajectory (T, C, *N) with at least one spatial axis, got "
            f"shape {u.shape}."
        )
    return tuple(range(2, u.ndim))


def _pair(pred, true):
    pred, true = jnp.asarray(pred), jnp.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(
            f"Prediction {pred.shape} and truth {true.shape} differ in shape; both "
            "must be (T, C, *N) on the same grid."
        )
    return pred, true, _space(true)


def rmse(pred: Trajectory, true: Trajectory) -> Array:
    """Root-mean-square error over channels and space, per step."""
    pred, true, space = _pair(pred, true)
    return jnp.sqrt(jnp.mean(jnp.square(pred - true), axis=(1, *space)))


def nrmse(pred: Trajectory, true: Trajectory) -> Array:
    """exponax/APEBench normalised RMSE: `Σ_c ‖pred_c − true_c‖₂ / ‖true_c‖₂` per step
    (channels summed after normalising; a zero true channel gives inf/NaN). The one
    definition of the toolkit: `dp.training.nrmse` is this of a single state. Its
    gradient at zero error is 0, not NaN (a safe square root), so it trains."""
    pred, true, space = _pair(pred, true)
    squared = jnp.sum(jnp.square(pred - true), axis=space)
    positive = squared > 0
    error = jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)
    return jnp.sum(error / jnp.sqrt(jnp.sum(jnp.square(true), axis=space)), axis=1)


def vrmse(pred: Trajectory, true: Trajectory) -> Array:
    """The Well's variance-scaled RMSE of each channel, per step, shape `(T, C)`:
    `sqrt(MSE_c / (s²_c + 1e-7))` with `s²_c` the *unbiased* (ddof = 1) spatial
    variance of the true channel, as The Well's `VRMSE` (`torch.std(y) ** 2`).
    The Well summarises over channels by their mean. Predicting the spatial mean
    scores `sqrt((n − 1) / n)` for `n` points, about 1."""
    pred, true, space = _pair(pred, true)
    mse = jnp.mean(jnp.square(pred - true), axis=space)
    return jnp.sqrt(mse / (jnp.var(true, axis=space, ddof=1) + VARIANCE_EPS))


def correlation(pred: Trajectory, true: Trajectory) -> Array:
    """Pearson correlation of prediction and truth over space, averaged over
    channels, per step (1 for a perfect prediction; a constant field counts as
    uncorrelated, 0)."""
    pred, true, space = _pair(pred, true)
    a = pred - jnp.mean(pred, axis=space, keepdims=True)
    b = true - jnp.mean(true, axis=space, keepdims=True)
    num = jnp.sum(a * b, axis=space)
    den = jnp.sqrt(jnp.sum(a * a, axis=space) * jnp.sum(b * b, axis=space))
    safe = jnp.where(den > 0, den, 1.0)
    return jnp.mean(jnp.where(den > 0, num / safe, 0.0), axis=1)


def high_correlation_steps(corr: Array, threshold: float = 0.8) -> Array:
    """Number of leading steps whose correlation stays >= `threshold` (NaN fails):
    the step index of the first failure, or `T` when none fails. Multiply by the
    frame interval for a time."""
    corr = jnp.asarray(corr)
    ok = jnp.where(jnp.isnan(corr), False, corr >= threshold)
    return jnp.where(jnp.all(ok), ok.shape[0], jnp.argmin(ok))


def mass_drift(
    pred: Trajectory, *, domain_extent: float = 1.0, channels=None, reference=None
) -> Array:
    """Drift of the spatial integral of each conserved channel from what it should
    be, `|∫ pred_t,c − m_t,c|`, largest over `channels` (default: all), per step.
    `reference` `m`: `(T,)` or `(T, C)`; default the prediction's own integral at
    step 0, right for a closed domain (zero to round-off for a conservative scheme
    on periodic Burgers). On an open domain pass the mass budget `b(t)` of the
    boundary fluxes (`dp.solvers.mass_budget`). (`dp.constraints.
    conservation_error` is another thing: the residual `G u - b` of a linear
    constraint.)"""
    pred = jnp.asarray(pred)
    space = _space(pred)
    if channels is not None:
        pred = pred[:, jnp.asarray(channels)]
    cell = (domain_extent / pred.shape[-1]) ** len(space)
    integral = jnp.sum(pred, axis=space) * cell
    if reference is None:
        reference = integral[:1]
    reference = jnp.asarray(reference)
    if reference.ndim == 1:
        reference = reference[:, None]
    return jnp.max(jnp.abs(integral - reference), axis=1)


def max_principle_violation(
    pred: Trajectory, true: Trajectory, *, over_time: bool = False
) -> Array:
    """How far `max|pred_t|` exceeds the bound `max|true_0|` of the initial state,
    per step (0 when kept). Burgers and the heat equation keep this bound on closed
    domains. Where boundary data bring in larger values (inflow), `over_time=True`
    bounds by the truth's largest value over the whole trajectory instead."""
    pred, true, _ = _pair(pred, true)
    bound = jnp.max(jnp.abs(true if over_time else true[0]))
    peak = jnp.max(jnp.abs(pred.reshape(pred.shape[0], -1)), axis=1)
    return jnp.maximum(peak - bound, 0.0)


def blowup_step(pred: Trajectory) -> Array:
    """The first step holding a NaN or inf, or -1 when every step is finite."""
    pred = jnp.asarray(pred)
    bad = ~jnp.all(jnp.isfinite(pred.reshape(pred.shape[0], -1)), axis=1)
    return jnp.where(jnp.any(bad), jnp.argmax(bad), -1)


def _shell_index(shape) -> Array:
    """Integer radial wavenumber `floor(|k|)` of each rfftn mode of a `shape` grid."""
    ks = wavenumbers(len(shape), 2 * jnp.pi, shape[0])
    return jnp.floor(jnp.sqrt(sum(k**2 for k in ks)) + 1e-9).astype(int)


def _rfft_weights(shape, ndim: int, dtype) -> Array:
    """Multiplicity of each rfftn mode in the full spectrum (2 for the halved axis'
    interior modes, 1 for its zero and Nyquist modes), for Parseval sums; shaped to
    broadcast against an `ndim`-dimensional spectrum."""
    n = shape[-1]
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return jnp.asarray(w.reshape((1,) * (ndim - 1) + (-1,)), dtype)


def spectral_errors(pred: Trajectory, true: Trajectory, bands=PDEBENCH_BANDS) -> Array:
    """RMSE of the error restricted to bands of integer wavenumber magnitude
    `lo <= floor(|k|) < hi` (radial shells in 2D/3D), per step and band, shape
    `(T, len(bands))`. Defaults: PDEBench's low/mid/high bands (k < 4, 4 <= k < 12,
    k >= 12). Normalised by Parseval, so that the bands' squares add up to the
    squared `rmse` when they cover every mode (PDEBench's fRMSE scales differently).
    Needs the same number of points on every axis.
    """
    pred, true, space = _pair(pred, true)
    shape = true.shape[2:]
    if len(set(shape)) != 1:
        raise ValueError(f"Spectral errors need equal points per axis, got {shape}.")
    spectrum = jnp.fft.rfftn(pred - true, axes=space)
    power = jnp.square(jnp.abs(spectrum)) * _rfft_weights(
        shape, spectrum.ndim, spectrum.real.dtype
    )
    power = (
        jnp.mean(power, axis=1) / float(np.prod(shape)) ** 2
    )  # channel mean, Parseval
    shell = _shell_index(shape)[None]
    out = []
    for lo, hi in bands:
        mask = shell >= lo if hi is None else (shell >= lo) & (shell < hi)
        total = jnp.sum(jnp.where(mask, power, 0.0), axis=tuple(range(1, power.ndim)))
        out.append(jnp.sqrt(total))
    return jnp.stack(out, axis=-1)


def energy_spectrum(u: Array) -> Array:
    """Shell-summed energy `E(k) = ½ Σ_{floor|k| = k} |û_k|² / N^{2d}` of a state
    `(C, *N)`, summed over channels, for `k = 0 .. N/2`; `Σ_k E(k) = ½ mean(u²)·C`."""
    u = jnp.asarray(u)
    shape = u.shape[1:]
    axes = tuple(range(1, u.ndim))
    spectrum = jnp.fft.rfftn(u, axes=axes)
    power = jnp.square(jnp.abs(spectrum)) * _rfft_weights(
        shape, spectrum.ndim, spectrum.real.dtype
    )
    power = 0.5 * jnp.sum(power, axis=0) / float(np.prod(shape)) ** 2
    shell = _shell_index(shape).reshape(-1)
    return (
        jnp.zeros(shape[0] // 2 + 1)
        .at[jnp.minimum(shell, shape[0] // 2)]
        .add(power.reshape(-1))
    )


# --------------------------------------------------------------------------------
# Aggregation over samples and steps


def summarise(values, quantiles=(0.1, 0.5, 0.9)) -> dict[str, np.ndarray]:
    """Per-step mean and quantiles over samples of `(B, T)` values, ignoring NaN
    (the steps of a blown-up sample after its blow-up). Returns NumPy arrays:
    `mean (T,)`, `quantiles (Q, T)`, `count (T,)` of finite samples."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    masked = np.where(finite, values, np.nan)
    with warnings.catch_warnings():  # all-NaN steps are NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(masked, axis=0)
        q = np.nanquantile(masked, quantiles, axis=0)
    return {"mean": mean, "quantiles": q, "count": count}


def geometric_mean(values, first: int = 100) -> float:
    """APEBench's aggregate: `exp(mean log v_t)` over the first `min(T, first)`
    steps of a `(T,)` series (0 if one is 0, inf or NaN if one is)."""
    values = np.asarray(values, dtype=np.float64)[:first]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.exp(np.mean(np.log(values))))
