from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
import optimistix as optx
from jaxtyping import Array, PyTree

from .._custom_types import BoolScalar, Scalar, ScalarLike
from .._solution import RESULTS, Solution


two_norm = optx.two_norm


def tree_dot(a: PyTree[Array], b: PyTree[Array]) -> Scalar:
    """Real inner product of two PyTrees of the same structure."""
    leaves = [
        jnp.vdot(x, y).real
        for x, y in zip(jtu.tree_leaves(a), jtu.tree_leaves(b), strict=True)
    ]
    return sum(leaves[1:], leaves[0])


def tree_axpy(alpha: ScalarLike, x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    """`alpha * x + y`, leafwise."""
    return jtu.tree_map(lambda xi, yi: alpha * xi + yi, x, y)


def tree_sub(x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(jnp.subtract, x, y)


def tree_neg(x: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(jnp.negative, x)


def tree_all_finite(x: PyTree[Array]) -> BoolScalar:
    return jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jtu.tree_leaves(x)])
    )


def stop_gradient(tree: PyTree) -> PyTree:
    """`lax.stop_gradient` on the array leaves of any PyTree (other leaves kept)."""
    dynamic, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(lax.stop_gradient(dynamic), static)


def strongly_typed(tree: PyTree) -> PyTree:
    """The PyTree with every weakly typed array leaf (a Python scalar that became
    an array or a tracer, as under `jax.grad(f)(3.0)`) given its dtype for real.

    A closure-converted residual is called with exactly the types it was converted
    with; inside optimistix's implicit JVP a weak type does not survive, so the
    layers convert their inputs first. Non-array leaves are left as they are.
    """
    return jtu.tree_map(
        lambda x: jnp.asarray(x, jnp.result_type(x)) if eqx.is_array(x) else x, tree
    )


def _describe(struct: PyTree) -> str:
    return str(jtu.tree_map(lambda s: f"{s.dtype}{list(s.shape)}", struct))


def structure_of(tree: PyTree, name: str) -> PyTree[jax.ShapeDtypeStruct]:
    """Shapes and dtypes of `tree`, which must be a non-empty PyTree of float arrays."""
    leaves = jtu.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"`{name}` has no array leaves; pass a float array or PyTree.")
    for leaf in leaves:
        if not hasattr(leaf, "dtype"):
            raise ValueError(
                f"`{name}` must hold arrays, got a leaf of type {type(leaf).__name__}; "
                "convert it with jnp.asarray."
            )
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise ValueError(
                f"`{name}` must be floating point, got dtype {leaf.dtype}; cast it "
                "with .astype(jnp.float32) or .astype(jnp.float64)."
            )
    return jax.eval_shape(lambda: tree)


def check_same_structure(got: PyTree, want: PyTree, message: str) -> None:
    """Raise `ValueError(message + shapes)` unless two shape-structs agree."""
    got_def, want_def = jtu.tree_structure(got), jtu.tree_structure(want)
    same = got_def == want_def and all(
        g.shape == w.shape
        for g, w in zip(jtu.tree_leaves(got), jtu.tree_leaves(want), strict=True)
    )
    if not same:
        raise ValueError(f"{message} Got {_describe(got)}, expected {_describe(want)}.")


def check_residual_fn(
    fn: Callable, y0: PyTree, args: Any, name: str, what: str
) -> None:
    """Check that `fn(y0, args)` returns a PyTree shaped like `y0`."""
    if not callable(fn):
        raise ValueError(f"`fn` must be a callable `fn(y, args)`, got {type(fn)}.")
    y_struct = structure_of(y0, "y0")
    out_struct = eqx.filter_eval_shape(fn, y0, args)
    check_same_structure(
        out_struct,
        y_struct,
        f"`{name}` needs fn(y, args) to return {what} with the same PyTree structure "
        "and shapes as y0 (a square system).",
    )


def finish(value: PyTree, result: RESULTS, stats: dict, throw: bool) -> Solution:
    """Package a solve; with `throw`, raise the result's message if it failed."""
    if throw:
        value, result, stats = result.error_if(
            (value, result, stats), result != RESULTS.successful
        )
    return Solution(value=value, result=result, stats=stats)
