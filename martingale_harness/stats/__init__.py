"""Statistics of belief updates (numpy and scipy only): the Martingale Score, power."""
