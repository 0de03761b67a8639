"""Before a run: grids of runs, call and cost estimates."""
