"""The platform's static files (a stylesheet and two scripts), served from memory.

The files are read once, at start-up, with a strong ETag; a browser that has
them gets ``304 Not Modified``. Serving from memory needs no file handle per
request (Quart's file responses open the file in a thread, and a request
cancelled at that moment — a browser closing a page — leaves the handle to
the garbage collector) and no database: the app's request hooks skip this
endpoint (:data:`ENDPOINT`).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from quart import Quart, Response, abort, request

ENDPOINT = "static"
FOLDER = Path(__file__).resolve().parent / "static"
SUFFIXES = (".css", ".js", ".svg", ".png", ".ico", ".woff2")


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    mimetype: str
    etag: str


def load(folder: Path = FOLDER) -> dict[str, StaticFile]:
    """Read every servable file under ``folder`` (by relative POSIX path)."""
    files: dict[str, StaticFile] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in SUFFIXES:
            body = path.read_bytes()
            mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if mimetype.startswith("text/") or mimetype == "application/javascript":
                mimetype += "; charset=utf-8"
            files[path.relative_to(folder).as_posix()] = StaticFile(
                body, mimetype, hashlib.sha256(body).hexdigest()[:32])
    return files


def install(app: Quart, folder: Path = FOLDER) -> None:
    """Add the ``static`` endpoint (``url_for('static', filename=...)``) over the files in ``folder``.

    The app must be made with ``static_folder=None``.
    """
    files = load(folder)

    async def serve(filename: str) -> Response:
        found = files.get(filename)
        if found is None:
            abort(404)
        if found.etag in request.if_none_match:
            response = Response(b"", 304)
        else:
            response = Response(found.body, mimetype=found.mimetype)
        response.set_etag(found.etag)
        response.cache_control.no_cache = True  # revalidate each time: a new release changes the files
        return response

    app.add_url_rule("/static/<path:filename>", ENDPOINT, serve, methods=["GET"])
