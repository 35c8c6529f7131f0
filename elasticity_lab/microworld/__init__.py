"""Layer 2, the micro-world: a synthetic language whose every behaviour has an exact label.

Its vocabulary and chat format (``vocab``), the word-level tokenizer (``tokenizer``), the generator of
documents, task data sets and the exact judge (``world``), and preference data built from them
(``preferences``). Imports ``core`` and ``info``; never a model.
"""
