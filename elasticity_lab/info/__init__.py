"""Layer 1, information theory in numpy alone: measures, compression, token trees, Pareto fits, the theorem.

Exact and fast; no torch, no tokenizer. Imports only :mod:`elasticity_lab.core`.
"""
