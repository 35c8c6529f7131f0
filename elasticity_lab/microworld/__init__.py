"""The micro-world: vocabulary, tokenizer, world, tasks and their exact judges (see :mod:`elasticity_lab.world`)."""
