"""martingale/bayes: generated problems with exact posteriors."""
