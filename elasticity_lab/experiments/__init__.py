"""The paper's experiments, each a function from a validated config to a tidy results table.

Every module here exposes ``cli_result(scale, n_seeds=None) -> dict`` (JSON-serialisable: the
config, the tidy table as records and the summary) for ``python -m elasticity_lab run <name>``.
"""

EXPERIMENTS: tuple[str, ...] = ("resistance", "rebound", "scale", "algorithms", "mitigation", "realmodels")
