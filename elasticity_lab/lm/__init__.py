"""Layer 3, language models: presets, batching, generation, metrics, training, pre-training, the hub, bases.

The one way to a starting model is :func:`elasticity_lab.lm.bases.load_base`. Imports ``core``,
``info`` and ``microworld``; never an experiment, a figure or a widget.
"""
