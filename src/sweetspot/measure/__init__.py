"""How the machine is measured: its fingerprint, seconds per step, the benchmark."""
