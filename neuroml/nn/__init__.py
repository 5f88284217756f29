"""neuroml.nn."""
