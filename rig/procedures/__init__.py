"""Hardware procedures over a running session: the calibrations and the
closed-loop latency self-test. The command line and the GUI call them."""
