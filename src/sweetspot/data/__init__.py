"""Data in: `download` (the verified mirror chain), `idx` (the files and their formats), `load`
(tensors on the device and the batches a training run draws)."""
