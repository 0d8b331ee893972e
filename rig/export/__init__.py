"""Recordings out to the field's formats (docs/export.md): one module per format."""
