"""neuroml.pipeline."""
