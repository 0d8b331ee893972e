"""ProtocolError: what is wrong in a protocol file, where, and what is allowed."""

from __future__ import annotations

import difflib


class ProtocolError(ValueError):
    """An invalid protocol file. Nothing is sent to the board."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        super().__init__(f"{source}: {path}: {message}")


def unknown_key(source: str, path: str, key: str, known: list[str]) -> ProtocolError:
    """Error for a key the schema does not have, with a did-you-mean."""
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ProtocolError(
        source,
        f"{path}.{key}" if path else key,
        f"unknown key{hint} Allowed: {', '.join(sorted(known))}",
    )
