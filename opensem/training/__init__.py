"""Training: the method registry (methods/), the backends that load and adapt models (backends/),
hardware preflight, the accelerate launcher, record encoding, tiny local models and loss curves."""
