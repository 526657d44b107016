"""The file store: where attachment bytes live (a local directory by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lotse.platform.actions import Services
    from lotse.platform.files.store import FileStore


def file_store(svc: Services) -> FileStore:
    """Return the app's file store (a local directory under ``settings.files_dir`` unless one was set)."""
    store = svc.extras.get("files")
    if store is None:
        from lotse.platform.files.store import LocalFileStore

        store = svc.extras["files"] = LocalFileStore(svc.settings.files_dir)
    return store
