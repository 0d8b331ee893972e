"""``python -m rig.cli`` runs the neurorig command line."""

import sys

from rig.cli import main

# Guarded: a worker process that re-imports the main module (multiprocessing's
# spawn, Dask's LocalCluster) must not run the command line again.
if __name__ == "__main__":
    sys.exit(main())
