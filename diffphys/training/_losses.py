"""Per-sample losses between a predicted and a true state `(C, *N)`."""

import jax.numpy as jnp

from .. import evaluation
from .._custom_types import Field, Scalar


def _tiny(x):
    return jnp.finfo(x.dtype).tiny


def mse(pred: Field, true: Field) -> Scalar:
    """Mean squared error over channels and space."""
    return jnp.mean(jnp.square(pred - true))


def relative_mse(pred: Field, true: Field) -> Scalar:
    """`‖pred − true‖² / ‖true‖²` (per sample; DyMixOp's release takes one ratio
    over the whole batch instead)."""
    return jnp.sum(jnp.square(pred - true)) / jnp.maximum(
        jnp.sum(jnp.square(true)), _tiny(true)
    )


def nrmse(pred: Field, true: Field) -> Scalar:
    """`Σ_c ‖pred_c − true_c‖ / ‖true_c‖`: `dp.evaluation.nrmse` of one state, the
    toolkit's one normalised RMSE (APEBench's training and test metric; for one
    channel the square root of `relative_mse`)."""
    return evaluation.nrmse(pred[None], true[None])[0]


LOSSES = {"mse": mse, "relative_mse": relative_mse, "nrmse": nrmse}


def get_loss(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(
            f"Unknown loss {name!r}; choose from: {', '.join(LOSSES)}."
        ) from None
