"""The elicitation protocol: the solver, its prompts and paradigms, per-call seeds, refusals."""
