"""Cross-cutting properties of every stepper, swept through the abstract bases:
the class hierarchy, gradients against finite differences, jit, vmap over states
and over constructors, float32."""

import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from helpers import central_difference, relative_error
from steppers import STEPPERS

import diffphys as dp


def _public_classes(module):
    return [
        obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, eqx.Module)
        and not name.startswith("Abstract")
    ]


def test_every_solver_is_a_final_stepper_and_every_operator_an_operator():
    # Every public module of the solvers is a stepper, or one of the named kinds
    # of building block a stepper is made of; a new solver that forgets the base
    # fails here.
    S = dp.solvers
    modules = [
        S,
        S.burgers,
        S.porous_medium,
        S.conservation_law,
        S.poisson,
        S.kuramoto_sivashinsky,
        S.navier_stokes,
        S.diffusion_sorption,
        S.darcy,
    ]
    parts = (
        S.AbstractETDRK,
        S.porous_medium.AbstractDiffusivity,
        S.Dirichlet,
        S.Neumann,
        S.Outflow,
        S.Periodic,
        S.SpectralGrid,
        S.poisson.DiffusionOperator,  # a steady operator, not a time stepper
        S.poisson.FluidPoisson,  # steady too, and the pieces of its solvers:
        S.poisson.Multigrid,
        S.poisson.DCDM,
        S.poisson.DCDMNet,
        S.poisson.DCDMTrainConfig,
        S.Darcy,  # steady: a map a -> u, not a time stepper
    )
    classes = {cls for m in modules for cls in _public_classes(m)}
    steppers = {cls for cls in classes if not issubclass(cls, parts)}
    assert {
        S.BurgersSpectral,
        S.BurgersFV,
        S.BurgersImplicit,
        S.PorousMedium,
        S.ConservationLaw,
        S.KuramotoSivashinsky,
        S.NavierStokesVorticity,
        S.DiffusionSorption,
    } <= steppers
    for cls in steppers:
        assert issubclass(cls, S.AbstractStepper), cls
    for cls in (S.PorousMedium, S.ConservationLaw, S.DiffusionSorption):
        assert issubclass(cls, S.AbstractConservativeStepper), cls
    for cls in (S.BurgersSpectral, S.KuramotoSivashinsky, S.NavierStokesVorticity):
        assert issubclass(cls, S.AbstractSpectralStepper), cls
    # Operators: everything public that maps a state, the constraint wrapper too.
    layers = {
        dp.operators.SpectralConv,
        dp.operators.LGMLayer,
        dp.operators.LearnedStencil,
    }
    operators = [c for c in _public_classes(dp.operators) if c not in layers]
    operators.append(dp.constraints.MassConserving)
    assert {dp.operators.FNO, dp.operators.DyMixOp, dp.operators.JAWS} <= set(operators)
    for cls in operators:
        assert issubclass(cls, dp.operators.AbstractOperator), cls


def _loss(case):
    shape = case.state(0.5).shape
    weights = jnp.cos(0.7 * jnp.arange(jnp.size(jnp.zeros(shape)), dtype=float))
    weights = weights.reshape(shape)

    def loss(p, u0):
        traj = dp.solvers.rollout(case.make(p), u0, case.steps)
        return jnp.sum(weights * traj[-1] ** 2)

    return loss


@pytest.mark.parametrize("case", STEPPERS, ids=repr)
def test_gradients_wrt_parameter_and_initial_state(case, getkey):
    loss = _loss(case)
    p = jnp.array(case.param)
    u0 = case.state(0.8)
    g_p, g_u0 = eqx.filter_jit(jax.grad(loss, argnums=(0, 1)))(p, u0)
    fd_p = central_difference(lambda v: loss(v, u0), p, jnp.array(1.0))
    assert relative_error(g_p, fd_p) < 1e-5
    direction = jax.random.normal(getkey(), u0.shape)
    fd_u0 = central_difference(lambda v: loss(p, v), u0, direction)
    assert relative_error(jnp.vdot(g_u0, direction), fd_u0) < 1e-5


@pytest.mark.parametrize("case", STEPPERS, ids=repr)
def test_jit_vmap_and_float32(case):
    stepper = case.make(case.param)
    assert isinstance(stepper, dp.solvers.AbstractStepper)
    steps = case.steps
    batch = jnp.stack([case.state(b) for b in (0.3, 0.6, 0.8)])
    batched = jax.jit(jax.vmap(lambda u: dp.solvers.rollout(stepper, u, steps)))(batch)
    single = dp.solvers.rollout(stepper, batch[1], steps)
    assert jnp.allclose(batched[1], single, rtol=1e-10, atol=1e-12)
    low = dp.solvers.rollout(stepper, batch[1].astype(jnp.float32), steps)
    assert low.dtype == jnp.float32
    assert jnp.allclose(low.astype(single.dtype), single, atol=1e-4)
    # Parameter ensembles: vmap over the constructor.
    params = jnp.array([0.8, 1.0]) * case.param
    many = eqx.filter_vmap(case.make)(params)
    outs = eqx.filter_vmap(lambda s: dp.solvers.rollout(s, batch[1], steps))(many)
    assert jnp.allclose(outs[1], single, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", STEPPERS, ids=repr)
def test_integer_and_boolean_states_are_promoted_to_float(case):
    # One rule for every stepper: a step of `jnp.where(x < 0.5, 1, 0)` is the step
    # of its float version, never a truncation back to integers.
    stepper = case.make(case.param)
    smooth = case.state(0.6)
    whole = (smooth > jnp.mean(smooth)).astype(jnp.int32)  # a 0/1 step
    mask = smooth < jnp.mean(smooth)
    if case.positive:  # 1/2 instead, and no boolean state (it holds zeros)
        whole, mask = whole + 1, whole + 1

    @jax.jit
    def steps(whole, mask):
        return (
            stepper(whole),
            stepper(whole.astype(float)),
            dp.solvers.rollout(stepper, mask, 2)[-1],
            dp.solvers.rollout(stepper, mask.astype(float), 2)[-1],
        )

    from_int, from_float, from_bool, from_float_mask = steps(whole, mask)
    for got, want in [(from_int, from_float), (from_bool, from_float_mask)]:
        assert got.dtype == jnp.result_type(float)
        # Equal to round-off: XLA may fuse the conversion into a Newton solve's
        # kernels differently (1 ulp seen on diffusion–sorption).
        assert jnp.allclose(got, want, rtol=1e-14, atol=0)
    assert not jnp.array_equal(from_int, jnp.round(from_int))  # not truncated


def test_rollout_of_an_operator_takes_the_time(getkey):
    # An operator ignores the time; a time-conditioned one receives t0 + k dt.
    fno = dp.operators.FNO(1, 1, 1, modes=4, width=4, num_layers=1, key=getkey())
    u0 = jnp.sin(jnp.linspace(0, 6, 16))[None]
    plain = dp.solvers.rollout(fno, u0, 3)
    timed = dp.solvers.rollout(fno, u0, 3, t0=2.0, dt=0.5)
    assert jnp.array_equal(plain, timed)

    class Clock(dp.operators.AbstractOperator):
        def __call__(self, u, t=0.0, *, key=None):
            return u + t

    frames = dp.solvers.rollout(Clock(), jnp.zeros((1, 4)), 3, t0=1.0, dt=0.5)
    assert jnp.allclose(frames[:, 0, 0], jnp.array([0.0, 1.0, 2.5, 4.5]))
