"""Whether an output folder can be made and written, asked before any work that would end there.

Standard library only, so ``scripts/pretrained.py`` (which needs nothing else) shares it with the
run folders of training and testing.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["unwritable"]


def unwritable(folder: Path) -> tuple[Path, str] | None:
    """``(path, why)`` when ``folder`` cannot be made or written, None when it can.

    ``path`` is the part of ``folder`` that blocks it: ``folder`` itself when it is a file or a
    folder without write permission, else the first part of its path that exists (a file where a
    parent folder must go, or a folder without write permission).
    """
    if folder.is_dir():
        return None if os.access(folder, os.W_OK | os.X_OK) else (folder, "permission denied")
    if folder.exists():
        return folder, "a file, not a folder"
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:  # the first part of the path that exists
        parent = parent.parent
    if not parent.is_dir():
        return parent, "a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return parent, "permission denied"
    return None
