"""Writing result files safely: through a temporary file and an atomic rename.

:func:`write_atomic` never leaves a half-written file behind (a reader sees the old content or
the new one), and never follows a symbolic link at the destination: the link itself is replaced,
so that a link planted in an output folder cannot make fxfault overwrite a file elsewhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder (then ``fsync``
    and ``os.replace``). Returns the path."""
    p = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
