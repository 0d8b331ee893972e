"""``python -m rig.cli`` runs the neurorig command line."""

import sys

from rig.cli import main

sys.exit(main())
