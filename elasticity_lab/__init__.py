"""Elasticity Lab: the library under the interactive textbook."""

__version__ = "0.1.0"
