"""First-party plugins of martingale-harness.

Each module registers itself through the ``martingale_harness`` entry-point group in
``pyproject.toml``, the same way a third-party package would.
"""
