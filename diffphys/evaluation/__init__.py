"""Rollout engine, trajectory metrics, plots and reports.

Nothing lives here yet; the evaluation issue fills it.
"""
