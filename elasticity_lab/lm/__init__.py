"""Language-model training and evaluation: SFT, preference optimisation, on-policy RL, generation, metrics."""
