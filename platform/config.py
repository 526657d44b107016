"""Settings from environment variables, with embedded defaults.

The embedded default needs nothing installed: SQLite under the data
directory, files under ``var/files``, mail into a maildir under ``var/mail``.
Every variable is read once, at start-up, into a frozen ``Settings``.

| variable | default |
|---|---|
| ``LOTSE_DATA_DIR`` | ``var`` (relative to the working directory) |
| ``LOTSE_DATABASE_URL`` | ``sqlite://<data dir>/lotse.sqlite3`` |
| ``LOTSE_REDIS_URL`` | unset: events stay in the process |
| ``LOTSE_SMTP_URL`` | unset: mail goes into the local maildir; ``smtp://host:port`` |
| ``LOTSE_MAIL_FROM`` | ``Lotse <noreply@<host of the base URL>>`` |
| ``LOTSE_BASE_URL`` | ``http://127.0.0.1:5000`` (used in links in mails) |
| ``LOTSE_SECRET_KEY`` | generated once and kept in ``<data dir>/secret_key`` |
| ``LOTSE_SECURE_COOKIES`` | ``0``; set ``1`` behind HTTPS |
| ``LOTSE_FLOWS_DIR`` / ``LOTSE_LOCALES_DIR`` | the folders shipped with Lotse |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit


def _shipped_dir(package: str) -> Path:
    """Return the folder of a resource package (``lotse.flows``, ``lotse.locales``)."""
    import importlib

    module = importlib.import_module(package)
    return Path(module.__file__ or "").resolve().parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    base_url: str = "http://127.0.0.1:5000"
    secret_key: str = ""
    redis_url: str | None = None
    smtp_url: str | None = None
    mail_from: str | None = None
    secure_cookies: bool = False
    flows_dir: Path = field(default_factory=lambda: _shipped_dir("lotse.flows"))
    locales_dir: Path = field(default_factory=lambda: _shipped_dir("lotse.locales"))
    # Limits the product promises; kept here so that tests can see them.
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_message_bytes: int = 40 * 1024 * 1024
    mail_retry_limit: int = 12
    testing: bool = False

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _secret_key(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from the environment (``os.environ`` by default)."""
    env = dict(os.environ if environ is None else environ)
    data_dir = Path(env.get("LOTSE_DATA_DIR", "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = env.get("LOTSE_DATABASE_URL") or f"sqlite://{data_dir / 'lotse.sqlite3'}"
    extra: dict[str, object] = {}
    if env.get("LOTSE_FLOWS_DIR"):
        extra["flows_dir"] = Path(env["LOTSE_FLOWS_DIR"]).resolve()
    if env.get("LOTSE_LOCALES_DIR"):
        extra["locales_dir"] = Path(env["LOTSE_LOCALES_DIR"]).resolve()
    base_url = env.get("LOTSE_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        base_url=base_url,
        secret_key=env.get("LOTSE_SECRET_KEY") or _secret_key(data_dir),
        redis_url=env.get("LOTSE_REDIS_URL") or None,
        smtp_url=env.get("LOTSE_SMTP_URL") or None,
        mail_from=env.get("LOTSE_MAIL_FROM") or None,
        secure_cookies=env.get("LOTSE_SECURE_COOKIES", "0") == "1" or urlsplit(base_url).scheme == "https",
        **extra,  # type: ignore[arg-type]
    )
