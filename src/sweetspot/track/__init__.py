"""How a run is tracked: MLflow runs, their outbox, outages and the shared server."""
