"""Losses, training modes (one-step, unrolled, diverted chain, solver-in-the-loop),
the trainer and checkpoints: where models meet solvers and constraints.

Nothing lives here yet; the operators-and-training issue fills it.
"""
