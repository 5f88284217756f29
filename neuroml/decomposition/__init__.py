"""neuroml.decomposition."""
