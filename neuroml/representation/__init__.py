"""neuroml.representation."""
