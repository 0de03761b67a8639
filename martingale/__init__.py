"""inspect-facing facade of martingale-harness.

inspect names a task after the top-level package that defines it, so the tasks live here to be
``martingale/forecast``; all the work is in :mod:`martingale_harness`.
"""
