"""Training against the harness: the Martingale reward for TRL (GRPO/RLOO on a peft LoRA) and bias distillation.

Importing this package is cheap: torch, transformers, peft and trl are imported only by the modules
that run models (:mod:`~martingale_harness.training.grpo`, :mod:`~martingale_harness.training.distill`),
so configs can be checked and rewards unit-tested without them.
"""
