"""Shared helpers of the test suite."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu


# Jitted: run eagerly, each primitive of each leaf shape compiles on its own, and
# that compilation was most of what these helpers cost.
@jax.jit
def tree_vdot(a, b):
    return sum(
        jnp.vdot(x, y)
        for x, y in zip(jtu.tree_leaves(a), jtu.tree_leaves(b), strict=True)
    )


def central_difference(f, x, v, eps=1e-6):
    """Directional derivative of scalar `f` at `x` along `v`, O(eps^2) accurate."""
    return _central_difference(f, x, v, eps)


@eqx.filter_jit
def _central_difference(f, x, v, eps):
    plus = jtu.tree_map(lambda xi, vi: xi + eps * vi, x, v)
    minus = jtu.tree_map(lambda xi, vi: xi - eps * vi, x, v)
    return (f(plus) - f(minus)) / (2 * eps)


@jax.jit
def random_like(key, tree):
    leaves, treedef = jtu.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jtu.tree_unflatten(
        treedef,
        [
            jax.random.normal(k, x.shape, x.dtype)
            for k, x in zip(keys, leaves, strict=True)
        ],
    )


def relative_error(a, b):
    return float(jnp.abs(a - b) / jnp.maximum(jnp.abs(b), 1e-300))


def run_cli(*args):
    """Run `diffphys ARGS` in this process through the console script's `main` (so
    errors take the same one-line path); returns a `CompletedProcess`."""
    import contextlib
    import io
    import subprocess
    import sys
    from unittest import mock

    from diffphys.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.object(sys, "argv", ["diffphys", *map(str, args)]),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def assert_one_line_error(result, message):
    """A non-zero exit with exactly one stderr line, `diffphys: ...message...`."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffphys:"), result.stderr
    assert message in lines[0], lines[0]
