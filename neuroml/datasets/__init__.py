"""neuroml.datasets."""
