"""Which runs are trained: the DVC sweep's cells, the race, and Ray."""
