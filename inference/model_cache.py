"""Writing into the model cache when several replicas may start, and build, at once."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staging_for(target: Path) -> Iterator[Path]:
    """A private folder beside target to build in; the caller renames its result onto target.

    Every builder writes in a folder of its own and the first rename wins, so a reader never sees
    half a file; a losing builder's rename fails, which is fine once target exists.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.stem}-", dir=target.parent))
    try:
        yield staging
    except OSError:
        if not target.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
