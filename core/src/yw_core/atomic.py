"""One way to write a file so that readers see the old file or the whole new one, never half.

A temp file in the same folder is written, flushed and fsynced, then renamed over the target
(`os.replace` is atomic on POSIX and Windows); on any error the temp file is removed and the
target is left as it was. Used for the zoo's model cache and for every benchmark output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, content: str | bytes | Callable[[BinaryIO], object]):
    """Write `content` (text, bytes, or a function writing to a binary file) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, str):
                f.write(content.encode())
            elif isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
