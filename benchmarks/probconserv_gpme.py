"""ProbConserv on the GPME family: a probabilistic base model trained on heat, PME
and Stefan data from `diffphys generate --source exact`, evaluated at t* without a
constraint, with `ProbConserv` (σ_G = 0) and with `HardProjection`.

Base model (ours, not the paper's ANP): an MLP `(t, x, parameter) -> (μ, log σ²)`
trained by Gaussian negative log-likelihood on random (t, x) points of the
training trajectories. Prints one JSON line: per instance MSE, conservation error
CE = Σ g μ - b (trapezoid weights, exact b), mean Gaussian log-likelihood, and for
Stefan the shock-position error |x̂ - α√t*| of the mean (where it drops below
u*/2); `ratio` = ProbConserv MSE / unconstrained MSE (the anchor, same run), next
to the paper's diffusion-case numbers (t = 0.5; third-party transcription).

    python benchmarks/probconserv_gpme.py [--steps 3000] [--samples 64]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import optax

import diffphys as dp
from diffphys.solvers.porous_medium import exact


PAPER_HEAT = {  # Hansen et al. 2023, Table 1 (k = 1 per the audit; unverified)
    "ANP": {"CE": 4.68e-3, "LL": 2.72, "MSE": 1.71e-4},
    "HardC-ANP": {"CE": 0.0, "LL": 3.08, "MSE": 1.37e-4},
    "ProbConserv-ANP": {"CE": 0.0, "LL": 2.74, "MSE": 1.55e-4},
}
INSTANCES = {  # name, parameter, t*, mass curve
    "heat": ("k", 0.5, lambda t, p: exact.heat_mass(t, k=p)),
    "pme": ("m", 0.5, lambda t, p: exact.pme_mass(t, m=p)),
    "stefan": ("u_star", 0.05, lambda t, p: exact.stefan_mass(t, u_star=p)),
}


def load(folder, split, param):
    us, ps = [], []
    for path in sorted((folder / "data" / split).glob("*.hdf5")):
        with h5py.File(path) as f:
            us.append(f["t0_fields/u"][...])
            ps.append(f["scalars"][param][...])
            x, t = f["dimensions/x"][...], f["dimensions/time"][...]
    return np.concatenate(us), np.concatenate(ps), x, t


class Model(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, t, x, p):
        mu, log_var = self.mlp(jnp.stack([t, x, p]))
        return mu, log_var


def train(u, p, x, t, steps, key):
    model = Model(eqx.nn.MLP(3, 2, 64, 4, activation=jax.nn.gelu, key=key))
    scale_t = 1.0 / t[-1]
    opt = optax.adam(optax.cosine_decay_schedule(3e-3, steps))
    state = opt.init(eqx.filter(model, eqx.is_array))

    def nll(model, tt, xx, pp, target):
        mu, log_var = jax.vmap(model)(tt * scale_t, xx, pp)
        log_var = jnp.maximum(log_var, -14.0)
        return jnp.mean(0.5 * (log_var + (target - mu) ** 2 / jnp.exp(log_var)))

    @eqx.filter_jit
    def step(model, state, key):
        ki, kt, kx = jax.random.split(key, 3)
        i = jax.random.randint(ki, (512,), 0, u.shape[0])
        j = jax.random.randint(kt, (512,), 0, u.shape[1])
        k = jax.random.randint(kx, (512,), 0, u.shape[2])
        loss, grads = eqx.filter_value_and_grad(nll)(
            model, t[j], x[k], p[i], u[i, j, k]
        )
        updates, state = opt.update(grads, state)
        return eqx.apply_updates(model, updates), state, loss

    u, p, x, t = map(jnp.asarray, (u, p, x, t))
    for s in range(steps):
        model, state, loss = step(model, state, jax.random.fold_in(key, s))
    return model, scale_t, float(loss)


def evaluate(name, model, scale_t, u, p, x, t):
    param, t_star, mass = INSTANCES[name]
    j = int(np.argmin(np.abs(t - t_star)))
    xs, ts = jnp.asarray(x), t[j]
    g = dp.constraints.mass_weights(xs)

    def predict(pp):
        return jax.vmap(lambda xx: model(ts * scale_t, xx, pp))(xs)

    mu, log_var = jax.vmap(predict)(jnp.asarray(p))
    var = jnp.exp(jnp.maximum(log_var, -14.0))
    b = jnp.broadcast_to(mass(ts, jnp.asarray(p)), p.shape)
    truth = jnp.asarray(u[:, j])
    mu_pc, cov_pc = dp.constraints.ProbConserv(g)(mu, dp.constraints.Diagonal(var), b)
    outputs = {
        "unconstrained": (mu, var),
        "ProbConserv": (mu_pc, cov_pc.variance),
        "HardProjection": (dp.constraints.HardProjection(g).project(mu, b), var),
    }
    rows = {}
    for method, (m, v) in outputs.items():
        v = jnp.maximum(v, 1e-12)
        ll = -0.5 * (jnp.log(2 * jnp.pi * v) + (truth - m) ** 2 / v)
        row = {
            "MSE": float(jnp.mean((m - truth) ** 2)),
            "CE": float(jnp.mean(dp.constraints.conservation_error(m, g, b))),
            "LL": float(jnp.mean(ll)),
        }
        if name == "stefan":
            front = exact.stefan_front(ts, u_star=jnp.asarray(p))
            idx = jnp.argmax(m < 0.5 * jnp.asarray(p)[:, None], axis=1)
            row["shock_error"] = float(jnp.mean(jnp.abs(xs[idx] - front)))
        rows[method] = row
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=64)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (param, _, _) in INSTANCES.items():
            folder = Path(tmp) / name
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "diffphys"),
                    "generate",
                    name,
                    "--out",
                    str(folder),
                    "--source",
                    "exact",
                    "--num-samples",
                    str(args.samples),
                    "--precision",
                    "float64",
                    "--quiet",
                ],
                check=True,
            )
            u, p, x, t = load(folder, "train", param)
            model, scale_t, loss = train(u, p, x, t, args.steps, jax.random.key(0))
            results[name] = evaluate(name, model, scale_t, *load(folder, "test", param))
            results[name]["train_nll"] = loss
    ratio = {
        n: r["ProbConserv"]["MSE"] / r["unconstrained"]["MSE"]
        for n, r in results.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "probconserv_gpme",
                "results": results,
                "ratio": ratio,
                "anchor": "unconstrained base model, same run",
                "paper_diffusion_t0.5": PAPER_HEAT,
                "steps": args.steps,
                "samples": args.samples,
                "seconds": round(time.perf_counter() - start, 1),
                "device": jax.devices()[0].device_kind,
            }
        )
    )


if __name__ == "__main__":
    main()
