"""How the command line writes its files: never half-written, never through a planted link.

Writers that take a path (the campaign's reports, the graph exports, ``torch.save``) write into a
private temporary folder first (:func:`staging`); :func:`publish` then copies each file to its
destination with :func:`fxfault.files.write_atomic`: a temporary file next to the destination and
an atomic rename, which replaces a symbolic link at the destination instead of following it.

Example::

    >>> out = Path(tempfile.mkdtemp())
    >>> with staging() as tmp:
    ...     _ = (tmp / "note.txt").write_text("hello")
    ...     [p.name for p in publish([tmp / "note.txt"], out)]
    ['note.txt']
    >>> (out / "note.txt").read_text()
    'hello'
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..files import write_atomic

__all__ = ["export_graph", "publish", "staging"]


@contextmanager
def staging() -> Iterator[Path]:
    """A private temporary folder, removed with everything in it when the block ends."""
    with tempfile.TemporaryDirectory(prefix="fxfault-") as tmp:
        yield Path(tmp)


def publish(files: Iterable[Path], folder: str | Path) -> list[Path]:
    """Copy each of ``files`` (written into a :func:`staging` folder) into ``folder`` under its
    own name, atomically and without following links; returns the destinations in order."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    return [write_atomic(out / f.name, f.read_bytes()) for f in files]


def export_graph(gm: Any, path: str | Path, **options: Any) -> Path:
    """:func:`fxfault.export` of ``gm`` to ``path``, written through :func:`publish`."""
    from ..inspection.export import export

    dest = Path(path)
    with staging() as tmp:
        written = export(gm, tmp / dest.name, **options)
        publish([written], dest.parent)
    return dest
