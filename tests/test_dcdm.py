"""The fluid pressure operator, the multigrid preconditioner and DCDM: symmetry,
positivity and masking, second-order convergence against manufactured solutions,
MG-PCG iteration counts as the grid doubles, the DCDM iteration and its loss, the
Lanczos data generator against `numpy.linalg.eigh`, gradients through the three
solvers against finite differences, and the errors of bad input."""

import functools
import itertools
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from helpers import assert_one_line_error, central_difference, run_cli

import diffphys as dp


P = dp.solvers.poisson
FLUID, SOLID, AIR = P.FLUID, P.SOLID, P.AIR


def _scene(shape):
    """A box with a solid block and a pool of air cells in one corner."""
    flags = np.full(shape, FLUID, np.int32)
    n = shape[0]
    block = tuple(slice(n // 4, n // 2) for _ in shape)
    flags[block] = SOLID
    flags[(slice(3 * n // 4, n),) * len(shape)] = AIR
    return jnp.asarray(flags)


def _closed_scene(shape):
    flags = np.full(shape, FLUID, np.int32)
    n = shape[0]
    flags[(slice(n // 4, n // 2),) * len(shape)] = SOLID
    return jnp.asarray(flags)


@pytest.fixture(scope="module")
def operators():
    return {
        "2d": P.FluidPoisson(_scene((16, 16)), domain_extent=2.0),
        "2d-closed": P.FluidPoisson(_closed_scene((16, 16))),
        "3d": P.FluidPoisson(_scene((8, 8, 8)), walls="air"),
    }


@pytest.mark.parametrize("name", ["2d", "2d-closed", "3d"])
def test_fluid_poisson_is_symmetric_positive_and_zero_off_the_fluid(operators, name):
    op = operators[name]
    kx, ky = jr.split(jr.key(0))
    x = jr.normal(kx, op.flags.shape)
    y = jr.normal(ky, op.flags.shape)
    ax, ay = op(x), op(y)
    np.testing.assert_allclose(jnp.vdot(x, ay), jnp.vdot(y, ax), rtol=1e-12)
    solid = ~op.fluid
    assert jnp.all(ax[solid] == 0)
    # Non-fluid entries of the input are ignored.
    np.testing.assert_array_equal(op(jnp.where(solid, 123.0, x)), ax)
    # Positive on the unknowns (after projecting a closed region's constants away).
    px = op.project(x)
    assert jnp.vdot(px, op(px)) > 1e-3 * jnp.vdot(px, px)
    # The projection is one: idempotent, and A = P A P.
    np.testing.assert_allclose(op.project(px), px, atol=1e-13)
    np.testing.assert_allclose(op.project(op(px)), ax, atol=1e-11)


def test_components_and_closed_regions():
    # A solid wall splits the box; only the right half has an air cell.
    flags = np.full((8, 8), FLUID, np.int32)
    flags[:, 3] = SOLID
    flags[0, 7] = AIR
    op = P.FluidPoisson(jnp.asarray(flags))
    labels = np.asarray(op.labels)
    assert len(np.unique(labels[flags == FLUID])) == 2
    assert np.all(np.asarray(op.closed)[:, :3]) and not np.any(op.closed[:, 4:])
    b = op.project(jnp.ones((8, 8)))
    np.testing.assert_allclose(b[:, :3], 0, atol=1e-14)
    np.testing.assert_array_equal(b[1:, 4:], 1.0)  # the open half: untouched


@functools.partial(jax.jit, static_argnums=(0, 1))
def _manufactured_error(n, walls):
    # Solid walls: p = cos(πx) cos(πy) has zero normal derivative at the walls of
    # [0, 1]² and mean zero (a closed box). Air walls: p vanishes at the centres of
    # the ghost cells, x = -h/2 and 1 + h/2.
    h = 1.0 / n
    x = (jnp.arange(n, dtype=float) + 0.5) * h
    x, y = jnp.meshgrid(x, x, indexing="ij")
    if walls == "solid":
        k = jnp.pi
        exact = jnp.cos(k * x) * jnp.cos(k * y)
    else:
        k = jnp.pi / (1 + h)
        exact = jnp.sin(k * (x + h / 2)) * jnp.sin(k * (y + h / 2))
    op = P.FluidPoisson(jnp.zeros((n, n), jnp.int32), walls=walls)
    sol = dp.implicit.linear_solve(op, 2 * k**2 * exact, dp.implicit.CG(rtol=1e-12))
    return jnp.max(jnp.abs(sol.value - exact))


@pytest.mark.parametrize("walls", ["solid", "air"])
def test_fluid_poisson_converges_at_second_order(walls):
    ns = np.array([8, 16, 32])
    errors = np.array([float(_manufactured_error(int(n), walls)) for n in ns])
    slope = np.polyfit(np.log(1.0 / ns), np.log(errors), 1)[0]
    assert abs(slope - 2.0) < 0.15, (errors, slope)


def test_closed_regions_project_or_refuse_the_right_hand_side():
    flags = _closed_scene((8, 8))
    b = jnp.ones((8, 8))  # sums to 48 over the fluid: not solvable as it is
    sol = dp.implicit.linear_solve(P.FluidPoisson(flags), b)
    op = P.FluidPoisson(flags)
    np.testing.assert_allclose(op(sol.value), op.project(b), atol=1e-5)
    assert abs(float(jnp.sum(sol.value))) < 1e-10
    strict = P.FluidPoisson(flags, project_rhs=False)
    with pytest.raises(Exception, match="does not sum to zero over a closed fluid"):
        dp.implicit.linear_solve(strict, b)
    # A mean-zero right-hand side is accepted as it is.
    good = op.project(b)
    np.testing.assert_allclose(
        dp.implicit.linear_solve(strict, good).value, sol.value, atol=1e-6
    )


@pytest.mark.parametrize("name", ["2d-closed", "3d"])
def test_multigrid_is_a_symmetric_positive_preconditioner(operators, name):
    op = operators[name]
    mg = eqx.filter_jit(P.Multigrid)(op, max_coarse=16)
    assert len(mg.levels) >= 3
    kx, ky = jr.split(jr.key(1))
    x = op.project(jr.normal(kx, op.flags.shape))
    y = op.project(jr.normal(ky, op.flags.shape))
    mx, my = op.project(mg(x)), op.project(mg(y))
    np.testing.assert_allclose(jnp.vdot(x, my), jnp.vdot(y, mx), rtol=1e-10)
    assert jnp.vdot(x, mx) > 0 and jnp.vdot(y, my) > 0


@functools.partial(jax.jit, static_argnums=0)
def _mg_pcg_steps(n):
    op = P.FluidPoisson(_scene((n, n)))
    b = op.project(jr.normal(jr.key(2), (n, n)))
    solver = dp.implicit.PCG(P.Multigrid(op, max_coarse=16), rtol=1e-6)
    return dp.implicit.linear_solve(op, b, solver).stats["num_steps"]


def test_mg_pcg_iterations_stay_bounded_as_the_grid_doubles():
    # The obstacle and the air pool scale with the grid; plain CG's count would
    # double with each doubling (see benchmarks/dcdm_poisson.py).
    steps = [int(_mg_pcg_steps(n)) for n in (8, 16, 32)]
    assert max(steps) <= 8 and steps[-1] - steps[0] <= 1, steps


@pytest.fixture(scope="module")
def net2d():
    return P.DCDMNet(2, width=8, key=jr.key(3))


def test_network_parameters_and_architecture():
    count = lambda net: sum(  # noqa: E731
        x.size for x in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))
    )
    # The authors' 64³ and 128³ models (§4 of the fact sheet).
    assert count(P.DCDMNet(3, key=jr.key(0))) == 97_457
    big = P.DCDMNet(3, full_convs=6, coarse_pairs=5, fine_pairs=3, key=jr.key(0))
    assert count(big) == 152_881


@eqx.filter_jit
def _dcdm_solve(net, window, max_steps):
    op = P.FluidPoisson(_scene((16, 16)))
    b = op.project(jr.normal(jr.key(4), (16, 16)))
    solver = P.DCDM(
        net,
        rtol=1e-6,
        max_steps=max_steps,
        window=window,
        throw=False,
        record_history=True,
    )
    return solver(op, b), b


def _identity(r):
    return r


def test_dcdm_with_the_residual_as_direction_is_conjugate_gradients():
    # With f(r) = r, A-orthogonalising against the last direction is CG's
    # recurrence: the same iterates, the same count; window 0 is steepest descent.
    op = P.FluidPoisson(_scene((16, 16)))
    sol, b = _dcdm_solve(_identity, 2, 400)
    cg = dp.implicit.linear_solve(
        op, b, dp.implicit.CG(rtol=1e-6, max_steps=400, record_history=True)
    )
    assert sol.result == dp.RESULTS.successful
    steps = int(cg.stats["num_steps"])
    assert abs(int(sol.stats["num_steps"]) - steps) <= 1
    # The residual histories agree step by step, and stop being recorded there.
    history, cg_history = sol.stats["residual_history"], cg.stats["residual_history"]
    np.testing.assert_allclose(history[: steps + 1], cg_history[: steps + 1], rtol=1e-6)
    np.testing.assert_allclose(history[0], jnp.linalg.norm(b), rtol=1e-12)
    assert jnp.all(jnp.isnan(cg_history[steps + 1 :]))
    np.testing.assert_allclose(sol.value, cg.value, atol=1e-5)
    residual = jnp.linalg.norm(b - op(sol.value))
    assert residual <= 1e-6 * jnp.linalg.norm(b)
    np.testing.assert_allclose(sol.stats["residual_norm"], residual, rtol=1e-8)
    assert jnp.all(sol.value[~op.fluid] == 0)
    descent, _ = _dcdm_solve(_identity, 0, 400)
    assert descent.result == dp.RESULTS.max_steps_reached


@pytest.mark.parametrize("window", [0, 2])
def test_dcdm_steps_are_the_fact_sheets_algorithm_with_a_random_network(net2d, window):
    # The solver's iterates equal a step-by-step reference of §3 (classical
    # Gram-Schmidt in the A inner product against the last `window` directions,
    # exact A-norm line search; window 0 is steepest descent along the network's
    # direction), and the A-norm error never grows: the one guarantee DCDM has for
    # any network, random weights included. (A random network does not
    # reach 1e-6 in practice: see DCDM's docstring.)
    steps = 6
    sol, b = _dcdm_solve(net2d, window, steps)
    op = P.FluidPoisson(_scene((16, 16)))
    exact = dp.implicit.linear_solve(op, b, dp.implicit.CG(rtol=1e-13)).value
    x, history, errors = jnp.zeros_like(b), [], []
    for _ in range(steps):
        r = b - op(x)
        q = op.project(net2d(r / jnp.linalg.norm(r)))
        q = q - sum(jnp.vdot(q, op(d)) / jnp.vdot(d, op(d)) * d for d in history)
        x = x + jnp.vdot(q, r) / jnp.vdot(q, op(q)) * q
        history = (history + [q])[len(history) + 1 - window :] if window else []
        errors.append(jnp.vdot(x - exact, op(x - exact)))
    assert int(sol.stats["num_steps"]) == steps
    np.testing.assert_allclose(sol.value, x, rtol=1e-10, atol=1e-12)
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(errors))
    assert errors[-1] < errors[0] < jnp.vdot(exact, op(exact))


def test_the_loss_does_not_see_the_scale_of_the_network_output(net2d):
    op = P.FluidPoisson(_scene((16, 16)))
    b = jr.normal(jr.key(5), (3, 16, 16))
    b = jax.vmap(op.project)(b)
    b = b / jnp.linalg.norm(b.reshape(3, -1), axis=1)[:, None, None]
    loss = P.dcdm_loss(net2d, op, b)
    scaled = P.dcdm_loss(lambda r: -3.7 * net2d(r), op, b)
    np.testing.assert_allclose(scaled, loss, rtol=1e-12)
    assert loss > 1e-3
    # The exact inverse, at any scale, has zero loss.
    eye = jnp.eye(256).reshape(256, 16, 16)
    inverse = jnp.linalg.pinv(jax.vmap(op)(eye).reshape(256, 256), hermitian=True)
    exact = P.dcdm_loss(
        lambda r: 5.0 * (inverse @ r.reshape(-1)).reshape(16, 16), op, b
    )
    assert exact < 1e-20


@pytest.mark.parametrize("closed", [False, True], ids=["air", "closed"])
def test_ritz_values_equal_the_eigenvalues_of_a_tiny_operator(closed):
    flags = jnp.zeros((4, 4), jnp.int32).at[1, 1].set(SOLID)
    op = P.FluidPoisson(flags, walls="solid" if closed else "air")
    n = int(jnp.sum(op.fluid))
    eye = jnp.eye(16).reshape(16, 4, 4)
    matrix = np.asarray(jax.vmap(op)(eye).reshape(16, 16))
    exact = np.linalg.eigvalsh(matrix)
    exact = exact[exact > 1e-9]
    rank = n - 1 if closed else n
    values, vectors = P.ritz_pairs(op, (4, 4), rank, key=jr.key(6))
    np.testing.assert_allclose(values, exact, rtol=1e-9)
    # Ritz vectors are eigenvectors of unit norm.
    for lam, v in zip(values, vectors, strict=True):
        np.testing.assert_allclose(op(v), lam * v, atol=1e-9)
    data = P.ritz_training_data(values, vectors, 7, key=jr.key(7))
    assert data.shape == (7, 4, 4) and data.dtype == jnp.float32
    np.testing.assert_allclose(
        jnp.linalg.norm(data.reshape(7, -1), axis=1), 1, rtol=1e-6
    )


@pytest.fixture(scope="module")
def gradient_problem():
    flags = _scene((8, 8))
    kappa = 1.0 + 0.3 * jr.uniform(jr.key(8), (8, 8))
    b = jr.normal(jr.key(9), (8, 8))
    # One V-cycle, built for the unperturbed operator, preconditions all of them
    # (no gradient flows through a preconditioner).
    mg = eqx.filter_jit(P.Multigrid)(P.FluidPoisson(flags, kappa=kappa), max_coarse=16)
    return flags, kappa, b, mg


@pytest.mark.parametrize("method", ["cg", "mg-pcg", "dcdm"])
def test_gradients_through_the_pressure_solve_match_finite_differences(
    method, gradient_problem
):
    flags, kappa0, b0, mg = gradient_problem
    weights = jr.normal(jr.key(10), (8, 8))
    solver = {
        "cg": dp.implicit.CG(rtol=1e-12),
        "mg-pcg": dp.implicit.PCG(mg, rtol=1e-12),
        # Any direction map serves DCDM; a random network stalls (see the notes
        # on DCDM's test above), the V-cycle converges.
        "dcdm": P.DCDM(mg, rtol=1e-12),
    }[method]

    def loss(b, kappa):
        op = P.FluidPoisson(flags, kappa=kappa)
        p = dp.implicit.linear_solve(op, b, solver).value
        return jnp.sum(weights * p**2)

    grad_b, grad_k = jax.jit(jax.grad(loss, argnums=(0, 1)))(b0, kappa0)
    vb, vk = jr.normal(jr.key(11), (8, 8)), jr.normal(jr.key(12), (8, 8))
    fd_b = central_difference(lambda b: loss(b, kappa0), b0, vb)
    fd_k = central_difference(lambda k: loss(b0, k), kappa0, vk)
    np.testing.assert_allclose(jnp.vdot(grad_b, vb), fd_b, rtol=1e-6)
    np.testing.assert_allclose(jnp.vdot(grad_k, vk), fd_k, rtol=1e-6)


def test_bad_input_gets_errors_that_say_what_to_change(net2d):
    good = jnp.zeros((8, 8), jnp.int32)
    cases = [
        (lambda: P.FluidPoisson(good.astype(float)), "integer array of FLUID"),
        (lambda: P.FluidPoisson(jnp.zeros(8, jnp.int32)), "2D or 3D grid"),
        (lambda: P.FluidPoisson(good.at[0, 0].set(7)), "only FLUID"),
        (lambda: P.FluidPoisson(jnp.full((8, 8), SOLID)), "no FLUID cell"),
        (lambda: P.FluidPoisson(good, walls="open"), "Unknown wall type"),
        (
            lambda: P.DCDM(net2d)(
                P.FluidPoisson(jnp.zeros((4, 4, 4), jnp.int32)), jnp.ones((4, 4, 4))
            ),
            "network of",
        ),
        (lambda: net2d(jnp.ones((15, 16))), "must be even"),
        (
            lambda: P.Multigrid(P.FluidPoisson(jnp.zeros((24, 25), jnp.int32))),
            "cannot coarsen",
        ),
        (lambda: P.DCDMTrainConfig(walls="open"), "must be one of solid, air"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    op = P.FluidPoisson(_scene((16, 16)))
    b = op.project(jnp.ones((16, 16)))
    with pytest.raises(Exception, match="maximum number of solver steps"):
        P.DCDM(net2d, max_steps=2)(op, b)


_TINY = dict(
    num_points=8,
    lanczos_steps=24,
    num_samples=32,
    batch_size=4,
    width=4,
    full_convs=2,
    coarse_pairs=1,
    fine_pairs=1,
    num_train_steps=20,
    validate_every=10,
    num_valid_solves=2,
)


def test_train_dcdm_resumes_exactly_and_learns(tmp_path):
    open_top = P.DCDMTrainConfig(num_spatial_dims=3, walls="open-top").operator()
    assert open_top.walls == (("solid", "solid"),) * 2 + (("solid", "air"),)
    config = P.DCDMTrainConfig(**_TINY)
    straight, summary = P.train_dcdm(config, tmp_path / "a", progress=False)
    _, stopped = P.train_dcdm(config, tmp_path / "b", until=10, progress=False)
    assert not stopped["finished"] and stopped["step"] == 10
    resumed, again = P.train_dcdm(config, tmp_path / "b", progress=False)
    assert again["finished"] and summary["finished"]
    for name in ("checkpoint.eqx", "best.eqx", "data.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (
            tmp_path / "b" / name
        ).read_bytes()
    logs = [(tmp_path / f / "log.jsonl").read_text() for f in "ab"]
    strip = lambda text: [  # noqa: E731
        {k: v for k, v in json.loads(line).items() if k != "seconds"}
        for line in text.splitlines()
    ]
    assert strip(logs[0]) == strip(logs[1])
    # The loss on held-out Ritz samples went down, and the run folder reads back.
    valid = [e["valid_loss"] for e in strip(logs[0]) if "valid_loss" in e]
    assert valid[-1] < valid[0]
    loaded = P.load_dcdm_network(tmp_path / "a")
    r = jr.normal(jr.key(13), (8, 8), jnp.float32)
    np.testing.assert_array_equal(loaded(r), straight(r))
    with pytest.raises(ValueError, match="holds another DCDM run"):
        P.train_dcdm(
            P.DCDMTrainConfig(**{**_TINY, "seed": 1}), tmp_path / "a", progress=False
        )


def test_cli_train_dcdm(tmp_path):
    args = ["train-dcdm", "--out", tmp_path / "run", "--quiet"]
    args += ["--num-points", "8", "--lanczos-steps", "16", "--samples", "16"]
    args += ["--batch-size", "4", "--width", "4", "--steps", "4"]
    result = run_cli(*args, "--validate-every", "2")
    assert result.returncode == 0, result.stderr
    assert "finished; best validation" in result.stdout
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["step"] == 4
    assert_one_line_error(run_cli(*args[:4], "--num-points", "7"), "--num-points")
    assert_one_line_error(run_cli(*args[:4], "--dims", "4"), "--dims must be 2 or 3")


@pytest.mark.parametrize(
    "d,n,scene,box",
    [
        (2, 32, "obstacle", None),
        (2, 32, "closed", "closed"),
        # 61 s at the suite's XLA optimisation level 0: in `make test-all`.
        pytest.param(3, 16, "obstacle", None, marks=pytest.mark.slow),
    ],
)
def test_shipped_weights_reach_the_tolerance(d, n, scene, box):
    # Measured 2026-12-02 (rtol 1e-6, this right-hand side): 2D 32² with a solid
    # block and air (unseen), the default open-top network: 62 iterations (CG 159);
    # the closed 32² box, the closed-box network: 15 (CG 112); 3D 16³ with the
    # block and air (unseen), the closed-box network: 30 (CG 117).
    flags = jnp.zeros((n,) * d, jnp.int32) if scene == "closed" else _scene((n,) * d)
    op = P.FluidPoisson(flags)
    b = op.project(jr.normal(jr.key(4), (n,) * d))
    solver = P.DCDM.pretrained(d, box=box, rtol=1e-6, max_steps=100)
    sol = eqx.filter_jit(solver.__call__)(op, b)
    cg = dp.implicit.linear_solve(op, b, dp.implicit.CG(rtol=1e-6))
    assert jnp.linalg.norm(b - op(sol.value)) <= 1e-6 * jnp.linalg.norm(b)
    assert 2 * int(sol.stats["num_steps"]) < int(cg.stats["num_steps"])
    with pytest.raises(ValueError, match="2D and 3D"):
        P.DCDM.pretrained(1)
    with pytest.raises(ValueError, match=r"choose one of \['closed'\]"):
        P.DCDM.pretrained(3, box="open-top")
