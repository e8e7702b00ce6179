"""The `contact-spheres` scenario: rigid spheres in a box, per-body data.

The state of `K` bodies is an array `(18, K)`: position (channels 0-2), the
rotation matrix body → world, row-major (3-11), velocity (12-14) and the angular
velocity in the world frame (15-17). A rotation matrix, not a quaternion, is what is
stored: it is a tensor field (The Well's `t2_fields`) and has no sign ambiguity.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from ..solvers.contact import (
    ContactStepper,
    from_rotation_matrix,
    Plane,
    rotation_matrix,
    Scene,
    Sphere,
    State,
)
from ._scenarios import Parameter, register_scenario, SavedField, Scenario


_MASS = 1.0  # kg
_SPEED = 2.0  # initial velocity components are U(-_SPEED, _SPEED), m/s
_LATTICE = 4  # initial positions: distinct cells of a 4 x 4 x 4 lattice
_GRAVITY = 9.81
# Halvings of a step that does not converge (`simulate(..., refine=...)`).
_REFINE = 2


def _to_state(u):
    """`(position, orientation, velocity, angular_velocity)` of a `State`."""
    position, rotation = u[0:3].T, u[3:12].T.reshape(-1, 3, 3)
    q = jax.vmap(from_rotation_matrix)(rotation)
    q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
    omega_body = jnp.einsum("kji,kj->ki", rotation, u[15:18].T)
    return position, q, u[12:15].T, omega_body


def _to_array(state):
    rotation = jax.vmap(rotation_matrix)(state.orientation)
    omega_world = jnp.einsum("kij,kj->ki", rotation, state.angular_velocity)
    parts = [state.position, rotation.reshape(-1, 9), state.velocity, omega_world]
    return jnp.concatenate(parts, axis=1).T


def box_scene(num_bodies, box, *, friction, radius) -> Scene:
    """`num_bodies` spheres (1 kg, `radius`) in the box `[0, box]³` without a lid:
    a floor and four walls."""
    planes = [
        Plane((0.0, 0.0, 1.0), 0.0),
        Plane((1.0, 0.0, 0.0), 0.0),
        Plane((-1.0, 0.0, 0.0), -box),
        Plane((0.0, 1.0, 0.0), 0.0),
        Plane((0.0, -1.0, 0.0), -box),
    ]
    spheres = [Sphere(_MASS, radius) for _ in range(num_bodies)]
    return Scene(spheres, planes, friction=friction)


class BodyStepper(eqx.Module):
    """A `ContactStepper` on the `(18, K)` array state of per-body datasets. A step
    that does not converge is redone as two half steps (twice at most); one that
    still fails returns NaN, which generation reports, so no unconverged state is
    ever stored."""

    stepper: ContactStepper
    refine: int = eqx.field(static=True, default=_REFINE)

    def __call__(self, u):
        # Not `scene.state`: its check of the gap would fail on the last digit.
        state = State(*_to_state(u))
        nxt, status = self.stepper.step(state, refine=self.refine)
        return jnp.where(status.converged, _to_array(nxt), jnp.nan)


def _initial(num_bodies, *, key):
    k_cells, k_velocity = jr.split(key)
    cells = jr.choice(k_cells, _LATTICE**3, (num_bodies,), replace=False)
    index = jnp.stack(
        [cells // _LATTICE**2, (cells // _LATTICE) % _LATTICE, cells % _LATTICE], -1
    )
    position = (index.astype(float) + 0.5) / _LATTICE  # the box is [0, 1]³
    velocity = jr.uniform(k_velocity, (num_bodies, 3), minval=-_SPEED, maxval=_SPEED)
    rotation = jnp.tile(jnp.eye(3).ravel(), (num_bodies, 1))
    spin = jnp.zeros((num_bodies, 3))
    return jnp.concatenate([position, rotation, velocity, spin], axis=1).T


def _max_dt(L, N, *, radius, **_):
    # A sphere moves at most its radius per step (no tunnelling through a wall or
    # another sphere), at the speed it reaches from its initial kinetic energy and
    # a fall through the box (impacts are inelastic; friction only dissipates).
    return radius / math.sqrt(3 * _SPEED**2 + 2 * _GRAVITY * L)


register_scenario(
    Scenario(
        name="contact-spheres",
        description="K rigid spheres (1 kg) in a 1 m box without a lid, hard "
        "contact and Coulomb friction (Dojo-style interior point, "
        "dp.solvers.contact); per-body fields",
        num_spatial_dims=3,
        make_stepper=lambda L, N, dt, *, friction, radius: BodyStepper(
            ContactStepper(box_scene(N, L, friction=friction, radius=radius), dt)
        ),
        initial_condition=_initial,
        max_dt=_max_dt,
        parameters={
            "friction": Parameter(
                "0.1:0.5",
                0.0,
                # Above, the interior point still fails on ~0.3 % of steps of four
                # spheres even with refinement (docs/design-decisions.md).
                0.5,
                description="Coulomb friction coefficient μ of every contact pair",
            ),
            "radius": Parameter(
                "0.1",
                0.0,
                0.12,
                low_open=True,
                description="sphere radius, m (initial centres are 0.25 m apart "
                "and 0.125 m from the walls)",
            ),
        },
        fields=(
            SavedField("position", 1, (0, 1, 2)),
            SavedField("orientation", 2, tuple(range(3, 12))),
            SavedField("velocity", 1, (12, 13, 14)),
            SavedField("angular_velocity", 1, (15, 16, 17)),
        ),
        boundary="wall",
        num_points=4,
        num_points_range=(1, _LATTICE**3),
        num_steps=100,
        frame_interval=0.01,
        num_samples=64,
        entities="body",
        precisions=("float64",),
        vectorise=False,
        defaults_from="ours (no benchmark recipe exists): positions on distinct "
        "cells of a 4 × 4 × 4 lattice, velocities U(±2 m/s), no spin",
    )
)
