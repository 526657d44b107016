"""The local file store: streamed writes become visible only when complete; abort leaves nothing."""

from __future__ import annotations

import pytest

from lotse.platform.files.store import LocalFileStore


async def test_write_commit_read_delete(tmp_path):
    store = LocalFileStore(tmp_path / "files")
    writer = store.open_writer()
    await writer.write(b"hello ")
    assert not await store.exists(writer.key)  # not visible while it is written
    await writer.write(b"world")
    await writer.commit()
    assert await store.exists(writer.key)
    assert await store.size(writer.key) == 11
    assert b"".join([chunk async for chunk in store.read(writer.key)]) == b"hello world"
    assert store.keys() == [writer.key]
    assert await store.delete(writer.key)
    assert not await store.delete(writer.key)
    assert store.keys() == []


async def test_abort_leaves_nothing(tmp_path):
    store = LocalFileStore(tmp_path / "files")
    writer = store.open_writer()
    await writer.write(b"x" * 1000)
    assert len(store.keys()) == 1  # the temporary part
    await writer.abort()
    assert store.keys() == []


def test_keys_are_never_paths(tmp_path):
    store = LocalFileStore(tmp_path / "files")
    for bad in ("../../etc/passwd", "a" * 10, "ABCDEF0123456789ABCD", ""):
        with pytest.raises(ValueError, match="not a file key"):
            store.path(bad)
