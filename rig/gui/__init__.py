"""PyQt5 + pyqtgraph views over a rig Session. The only package that imports Qt."""
