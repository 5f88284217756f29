"""neuroml.decoding."""
