"""After a run: reading logs, results tables, leaderboard, comparisons, agreement, rescoring, figures."""
