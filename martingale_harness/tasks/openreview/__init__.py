"""martingale/openreview: papers and their reviews."""
