"""martingale/forecast: ForecastBench questions."""
