"""The evals: task configs (lm-eval YAML), the task builder, and one folder per eval."""
