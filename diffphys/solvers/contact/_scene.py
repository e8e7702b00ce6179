import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _quaternion as quat
from ._bodies import Box, Plane, Sphere


class State(eqx.Module):
    """The state of `B` rigid bodies at step `k`.

    - `position`: `(B, 3)`, world frame, m (the centre of mass).
    - `orientation`: `(B, 4)`, unit quaternions, scalar first, body to world.
    - `velocity`: `(B, 3)`, world frame, m/s: the mean velocity over the step that
        ended here, `v_{k-½} = (x_k - x_{k-1}) / h` (an initial velocity is read so).
    - `angular_velocity`: `(B, 3)`, **body** frame, rad/s: `ω_{k-½}` likewise.

    Build it with `Scene.state(...)`, which checks it. `simulate` stacks states
    along a leading time axis.
    """

    position: Float[Array, "B 3"]
    orientation: Float[Array, "B 4"]
    velocity: Float[Array, "B 3"]
    angular_velocity: Float[Array, "B 3"]


def tangents(normal: Float[Array, "3"]) -> Float[Array, "2 3"]:
    """Two unit vectors orthogonal to the unit `normal` and to each other (a fixed
    choice per normal; friction is isotropic, so which one does not matter)."""
    helper = jnp.where(
        jnp.abs(normal[0]) < 0.9, jnp.array([1.0, 0, 0]), jnp.array([0, 1.0, 0])
    )
    first = jnp.cross(normal, helper)
    first = first / jnp.linalg.norm(first)
    return jnp.stack([first, jnp.cross(normal, first)])


class Contacts(eqx.Module):
    """The candidate contacts of a scene at one configuration, all of them always
    present (no active set): `P` rows of gaps, frames and lever arms.

    - `gap`: `(P,)` signed distance `φ`, m.
    - `normal`: `(P, 3)` unit normals, pushing body `a` out of the contact.
    - `tangent`: `(P, 2, 3)`.
    - `lever_a`, `lever_b`: `(P, 3)` world vectors from each body's centre to the
        contact point (`lever_b` unused where `b` is a plane).
    """

    gap: Float[Array, " P"]
    normal: Float[Array, "P 3"]
    tangent: Float[Array, "P 2 3"]
    lever_a: Float[Array, "P 3"]
    lever_b: Float[Array, "P 3"]


class Scene(eqx.Module):
    """Rigid bodies and static planes, and the contacts between them.

    Contacts are sphere–plane (the centre, with the radius as margin), box-vertex–
    plane (each of the 8 corners) and sphere–sphere. Every body–plane and
    sphere–sphere combination is a contact *pair* (`pairs` lists them: `("plane",
    body, plane)` then `("sphere", a, b)`); a box–plane pair has 8 contacts.
    Box–box and box–sphere contacts are not modelled.

    **Arguments:**

    - `bodies`: a sequence of `Sphere` and `Box` (`B` bodies, in state order).
    - `planes`: a sequence of `Plane`.
    - `friction`: Coulomb's `μ >= 0`, a number or one per pair (`len(pairs)`).
    - `gravity`: m/s², world frame.

    Masses, radii, sizes, inertias, friction, gravity and plane offsets are array
    fields: gradients flow to them.
    """

    bodies: tuple[Sphere | Box, ...]
    planes: tuple[Plane, ...]
    friction: Float[Array, " pairs"]
    gravity: Float[Array, "3"]
    pairs: tuple[tuple[str, int, int], ...] = eqx.field(static=True)

    def __init__(self, bodies, planes=(), *, friction, gravity=(0.0, 0.0, -9.81)):
        bodies, planes = tuple(bodies), tuple(planes)
        if not bodies:
            raise ValueError("A Scene needs at least one body (a Sphere or a Box).")
        for body in bodies:
            if not isinstance(body, Sphere | Box):
                raise ValueError(
                    f"Bodies are dp.solvers.contact.Sphere or Box, got "
                    f"{type(body).__name__}."
                )
        for plane in planes:
            if not isinstance(plane, Plane):
                raise ValueError(
                    f"Planes are dp.solvers.contact.Plane, got {type(plane).__name__}."
                )
        self.bodies, self.planes = bodies, planes
        spheres = [i for i, b in enumerate(bodies) if isinstance(b, Sphere)]
        self.pairs = tuple(
            ("plane", i, j) for i in range(len(bodies)) for j in range(len(planes))
        ) + tuple(
            ("sphere", a, b) for n, a in enumerate(spheres) for b in spheres[n + 1 :]
        )
        if not self.pairs:
            raise ValueError("The scene has no contact pair: add a Plane.")
        dtype = bodies[0].mass.dtype
        friction = jnp.asarray(friction, dtype)
        if friction.ndim == 0:
            friction = jnp.full(len(self.pairs), friction)
        if friction.shape != (len(self.pairs),):
            raise ValueError(
                f"`friction` must be a number or one per contact pair "
                f"({len(self.pairs)}: {self.pairs}), got shape {friction.shape}."
            )
        if not isinstance(friction, jax.core.Tracer) and np.any(
            np.asarray(friction) < 0
        ):
            raise ValueError(f"`friction` must be >= 0, got {np.asarray(friction)}.")
        self.friction = friction
        self.gravity = jnp.asarray(gravity, dtype)
        if self.gravity.shape != (3,):
            raise ValueError(f"`gravity` must be a 3-vector, got {self.gravity.shape}.")

    @property
    def num_bodies(self) -> int:
        return len(self.bodies)

    @property
    def num_contacts(self) -> int:
        return len(self._plane_contacts()[0]) + len(self._sphere_pairs())

    def masses(self) -> Float[Array, " B"]:
        return jnp.stack([b.mass for b in self.bodies])

    def inertias(self) -> Float[Array, "B 3 3"]:
        return jnp.stack([b.inertia for b in self.bodies])

    def _plane_contacts(self):
        """Static indices of the point–plane contacts: body, plane, point, pair."""
        body, plane, point, pair = [], [], [], []
        for p, (kind, i, j) in enumerate(self.pairs):
            if kind == "plane":
                count = 1 if isinstance(self.bodies[i], Sphere) else 8
                body += [i] * count
                plane += [j] * count
                point += list(range(count))
                pair += [p] * count
        return tuple(np.asarray(a, int) for a in (body, plane, point, pair))

    def _sphere_pairs(self):
        return [
            (p, a, b) for p, (kind, a, b) in enumerate(self.pairs) if kind == "sphere"
        ]

    def contact_bodies(self) -> tuple[np.ndarray, np.ndarray]:
        """Static `(a, b)` body indices of each contact; `b = -1` for a plane."""
        body, *_ = self._plane_contacts()
        spheres = self._sphere_pairs()
        a = np.concatenate([body, np.asarray([s[1] for s in spheres], int)])
        b = np.concatenate(
            [-np.ones_like(body), np.asarray([s[2] for s in spheres], int)]
        )
        return a.astype(int), b.astype(int)

    def contact_friction(self) -> Float[Array, " P"]:
        _, _, _, pair = self._plane_contacts()
        pair = np.concatenate(
            [pair, np.asarray([s[0] for s in self._sphere_pairs()], int)]
        )
        return self.friction[pair.astype(int)]

    def contacts(self, position, orientation) -> Contacts:
        """The contacts at a configuration `(B, 3)`, `(B, 4)`."""
        body, plane, point, _ = self._plane_contacts()
        parts = []
        if len(body):
            points, radii = zip(*(b.contact_points() for b in self.bodies), strict=True)
            local = jnp.concatenate(
                [points[i][k][None] for i, k in zip(body, point, strict=True)]
            )
            radius = jnp.stack([radii[i][k] for i, k in zip(body, point, strict=True)])
            normals = jnp.stack([p.normal for p in self.planes])[plane]
            offsets = jnp.stack([p.offset for p in self.planes])[plane]
            rotations = jax.vmap(quat.rotation_matrix)(orientation)[body]
            arm = jnp.einsum("pij,pj->pi", rotations, local)
            centre = position[body] + arm
            gap = jnp.sum(normals * centre, -1) - offsets - radius
            lever = arm - radius[:, None] * normals
            parts.append((gap, normals, lever, jnp.zeros_like(lever)))
        spheres = self._sphere_pairs()
        if spheres:
            a = np.asarray([s[1] for s in spheres])
            b = np.asarray([s[2] for s in spheres])
            ra = jnp.stack([self.bodies[i].radius for i in a])
            rb = jnp.stack([self.bodies[i].radius for i in b])
            d = position[a] - position[b]
            distance = jnp.linalg.norm(d, axis=-1)
            normals = d / distance[:, None]
            gap = distance - ra - rb
            parts.append((gap, normals, -ra[:, None] * normals, rb[:, None] * normals))
        gap, normal, lever_a, lever_b = (
            jnp.concatenate(x) for x in zip(*parts, strict=True)
        )
        return Contacts(gap, normal, jax.vmap(tangents)(normal), lever_a, lever_b)

    def state(
        self, position, orientation=None, velocity=None, angular_velocity=None
    ) -> State:
        """A checked `State` of this scene's `B` bodies: `position (B, 3)`;
        `orientation (B, 4)` unit quaternions (default identity); `velocity`
        (world) and `angular_velocity` (body frame) `(B, 3)` (default zero), read
        as the mean velocities of the step before. No body may start inside a
        plane or another sphere."""
        dtype = self.gravity.dtype
        B = self.num_bodies
        position = jnp.asarray(position, dtype)
        orientation = (
            jnp.tile(jnp.array([1.0, 0, 0, 0], dtype), (B, 1))
            if orientation is None
            else jnp.asarray(orientation, dtype)
        )
        velocity = (
            jnp.zeros((B, 3), dtype)
            if velocity is None
            else jnp.asarray(velocity, dtype)
        )
        angular_velocity = (
            jnp.zeros((B, 3), dtype)
            if angular_velocity is None
            else jnp.asarray(angular_velocity, dtype)
        )
        for name, value, width in [
            ("position", position, 3),
            ("orientation", orientation, 4),
            ("velocity", velocity, 3),
            ("angular_velocity", angular_velocity, 3),
        ]:
            if value.shape != (B, width):
                raise ValueError(
                    f"`{name}` must have shape ({B}, {width}) for this scene's {B} "
                    f"bodies, got {value.shape}."
                )
        state = State(position, orientation, velocity, angular_velocity)
        return check_state(self, state)


def check_state(scene: Scene, state: State) -> State:
    """Unit quaternions and no initial penetration: a `ValueError` when the state
    is concrete, a runtime error (`eqx.error_if`) under `jit`."""
    norm_error = jnp.max(jnp.abs(jnp.linalg.norm(state.orientation, axis=-1) - 1))
    gap = jnp.min(scene.contacts(state.position, state.orientation).gap)
    quaternion_message = (
        "`orientation` must hold unit quaternions (scalar first); normalise them "
        "(q / |q|)."
    )
    gap_message = (
        "A body starts inside a plane or another sphere (a negative gap); move it "
        "out (a small positive gap is best)."
    )
    if not isinstance(norm_error, jax.core.Tracer) and float(norm_error) > 1e-9:
        raise ValueError(
            f"{quaternion_message} Largest | |q| - 1 |: {float(norm_error):.3g}."
        )
    if not isinstance(gap, jax.core.Tracer) and float(gap) < 0:
        raise ValueError(f"{gap_message} Deepest: {float(gap):.3g} m.")
    position = eqx.error_if(state.position, norm_error > 1e-9, quaternion_message)
    position = eqx.error_if(position, gap < 0, gap_message)
    return eqx.tree_at(lambda s: s.position, state, position)
