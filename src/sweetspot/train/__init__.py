"""One run: `step` (the step as a value), `engine` (its kernels), `noise` (the gradient noise
scale), `loop` (train_one: the loop and its clock), `run` (one tracked run: `sweetspot train`)."""
