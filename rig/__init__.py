"""The live system: headless session, recording, protocols, CLI; rig.gui on top."""
