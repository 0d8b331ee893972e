"""The simulated rig: worm model, firmware emulator on a pty, synthetic camera."""
