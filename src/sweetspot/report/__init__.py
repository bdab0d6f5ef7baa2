"""How the answer is written: report.md, its figures, the MLflow sweep run."""
