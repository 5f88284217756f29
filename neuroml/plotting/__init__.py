"""neuroml.plotting."""
