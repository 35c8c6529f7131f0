"""Layer 0, the ground: scales and input validation (``config``) and the on-disk results cache (``cache``).

Everything else may import these; they import nothing of the package.
"""
