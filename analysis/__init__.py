"""Pure analysis over numpy arrays: electrophysiology, motion, parameter maps."""
