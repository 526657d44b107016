"""A file-store interface and its default: a local directory under ``settings.files_dir``.

Attachments are written as a stream: bytes go into a temporary file next to
their final place and the file is renamed into place only when it is
complete, so a reader never sees half a file and an aborted upload leaves
nothing behind (``abort``, or the temporary file is removed on error).
Keys are random and never derived from what a user typed: a file name from
an upload is metadata in the database, not a path.

An object store can implement the same ``FileStore`` protocol later.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024


class FileWriter(Protocol):
    key: str
    size: int

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class FileStore(Protocol):
    def open_writer(self) -> FileWriter:
        """Start writing a new file under a fresh random key."""
        ...

    # Not ``async def``: an implementation is an async generator, which a
    # caller iterates without awaiting (``async for chunk in store.read(key)``).
    def read(self, key: str) -> AsyncIterator[bytes]:
        """Yield the bytes of a stored file in chunks."""
        ...

    async def size(self, key: str) -> int: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> bool:
        """Remove a stored file; return whether there was one."""
        ...

    def keys(self) -> list[str]:
        """Every stored key (tests and clean-up checks)."""
        ...


def _valid_key(key: str) -> bool:
    return 16 <= len(key) <= 64 and all(c in "0123456789abcdef" for c in key)


class LocalFileWriter:
    def __init__(self, store: LocalFileStore, key: str) -> None:
        self.key = key
        self.size = 0
        self._store = store
        self._temp = store.root / ".incoming" / f"{key}.part"
        self._temp.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self._temp.open("xb")
        self._done = False

    async def write(self, data: bytes) -> None:
        if self._done:
            raise RuntimeError("the file is already closed")
        self.size += len(data)
        # Small writes go straight to the OS buffer; a thread would cost more than it saves.
        self._handle.write(data)

    async def commit(self) -> None:
        self._done = True
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        final = self._store.path(self.key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temp, final)

    async def abort(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._done = True
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()


class LocalFileStore:
    """Files under ``root/<2 hex>/<key>``; temporary parts under ``root/.incoming``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not _valid_key(key):
            raise ValueError("not a file key")
        return self.root / key[:2] / key

    def open_writer(self) -> LocalFileWriter:
        return LocalFileWriter(self, secrets.token_hex(20))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self.path(key)
        with path.open("rb") as handle:
            while True:
                data = await asyncio.to_thread(handle.read, CHUNK)
                if not data:
                    return
                yield data

    async def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    async def exists(self, key: str) -> bool:
        return _valid_key(key) and self.path(key).is_file()

    async def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = [p.name for p in self.root.glob("??/*") if p.is_file()]
        found += [p.name for p in (self.root / ".incoming").glob("*") if p.is_file()]
        return sorted(found)
