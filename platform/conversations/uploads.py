"""Reading a message form with attachments as a stream, within the limits.

The limits (``settings.max_attachment_bytes`` per file, ``max_message_bytes``
per message) are enforced before anything is kept:

1. a ``Content-Length`` beyond the message limit plus a small allowance for
   the form's text is refused before a byte of the body is read;
2. while the body streams in, each file's bytes are counted as they are
   written to a temporary file; the first byte beyond a limit aborts every
   file of the request (temporary and completed ones alike) and the request
   is refused, so nothing half-written or orphaned stays in the file store.

File names are sanitised (``safe_filename``) and the content type is sniffed
from the first bytes (``sniff``); what the browser claims is ignored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from quart import request
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from lotse.platform.errors import LimitError, PlatformError
from lotse.platform.files.store import FileStore, FileWriter
from lotse.platform.i18n import _l

FORM_ALLOWANCE = 256 * 1024  # the message text and the multipart framing around the files
MAX_FIELD_BYTES = 64 * 1024
SNIFF_BYTES = 512
SLICE = 64 * 1024
MB = 1024 * 1024


@dataclass
class StoredUpload:
    """A file that was written completely to the store, not yet part of a message."""

    key: str
    filename: str
    content_type: str
    size: int


@dataclass
class MessageForm:
    fields: dict[str, str] = field(default_factory=dict)
    uploads: list[StoredUpload] = field(default_factory=list)


def attachment_too_large(limit: int) -> LimitError:
    return LimitError("attachment_too_large", _l(
        "An attachment may be at most %(limit)s MB. Please choose a smaller file.", limit=limit // MB))


def message_too_large(limit: int) -> LimitError:
    return LimitError("message_too_large", _l(
        "The attachments of one message may be at most %(limit)s MB together. Please send them in several "
        "messages.", limit=limit // MB))


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*;]+')


def safe_filename(name: str) -> str:
    """Return a file name fit to show and to offer for download (no path, no control characters)."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip(". ")
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 150 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:150]
    return name or "attachment"


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # old Office files
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"\x1f\x8b", "application/gzip"),
)
_MARKUP = re.compile(rb"^\s*(<\?xml|<!doctype|<html|<svg|<script|<head|<body|<iframe|<!--)", re.IGNORECASE)


def sniff(head: bytes) -> str:
    """Return the content type the first bytes show; markup and unknown bytes are octet-stream."""
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if not head:
        return "application/octet-stream"
    if _MARKUP.match(head) or b"<svg" in head.lower() or b"<html" in head.lower():
        return "application/octet-stream"  # never let a browser render HTML or SVG from us
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut off at the end of the sample
            return "application/octet-stream"
    return "text/plain"


class _Limits:
    def __init__(self, per_file: int, per_message: int) -> None:
        self.per_file = per_file
        self.per_message = per_message
        self.total = 0


async def read_message_form(
    store: FileStore, per_file: int, per_message: int, *, check_csrf: Any = None
) -> MessageForm:
    """Read the current request's form; files go to ``store`` within the limits (see the module docstring)."""
    length = request.content_length
    if length is not None and length > per_message + FORM_ALLOWANCE:
        raise message_too_large(per_message)
    mimetype = request.mimetype
    if mimetype != "multipart/form-data":
        form = await request.form
        values = dict(form.items())
        if check_csrf is not None:
            check_csrf(values.get("csrf_token"))
        return MessageForm(fields={k: v for k, v in values.items() if k != "csrf_token"})
    boundary = request.mimetype_params.get("boundary", "").encode()
    if not boundary:
        raise PlatformError("bad_request")
    # Field sizes are checked below; the decoder's own limit would count the whole buffer.
    decoder = MultipartDecoder(boundary)
    result = MessageForm()
    limits = _Limits(per_file, per_message)
    written: list[FileWriter] = []
    current: dict[str, Any] | None = None
    csrf_checked = check_csrf is None
    try:
        async for chunk in request.body:
            for start in range(0, len(chunk), SLICE):
                decoder.receive_data(chunk[start:start + SLICE])
                current, csrf_checked = await _consume(decoder, store, result, limits, written, current,
                                                       check_csrf, csrf_checked)
        decoder.receive_data(None)
        current, csrf_checked = await _consume(decoder, store, result, limits, written, current,
                                               check_csrf, csrf_checked)
        if not csrf_checked:
            check_csrf(result.fields.get("csrf_token"))
    except BaseException:
        for writer in written:
            await writer.abort()
            await store.delete(writer.key)
        raise
    result.fields.pop("csrf_token", None)
    return result


async def _consume(
    decoder: MultipartDecoder,
    store: FileStore,
    result: MessageForm,
    limits: _Limits,
    written: list[FileWriter],
    current: dict[str, Any] | None,
    check_csrf: Any,
    csrf_checked: bool,
) -> tuple[dict[str, Any] | None, bool]:
    while True:
        event = decoder.next_event()
        if isinstance(event, NeedData | Epilogue):
            return current, csrf_checked
        if isinstance(event, Field):
            current = {"kind": "field", "name": event.name, "data": bytearray()}
        elif isinstance(event, File):
            if not csrf_checked and "csrf_token" in result.fields:
                # The token comes first in our forms: a forged form stores nothing. (Clients that
                # send the files first are checked at the end, and their files deleted on failure.)
                check_csrf(result.fields.get("csrf_token"))
                csrf_checked = True
            current = {"kind": "file", "name": safe_filename(event.filename or ""), "raw": event.filename or "",
                       "writer": None, "head": b""}
        elif isinstance(event, Data) and current is not None:
            if current["kind"] == "field":
                current["data"] += event.data
                if len(current["data"]) > MAX_FIELD_BYTES:
                    raise LimitError("field_too_large", _l("The message is too long."))
                if not event.more_data:
                    result.fields[current["name"]] = current["data"].decode("utf-8", "replace")
                    current = None
                continue
            await _file_data(store, result, limits, written, current, event)
            if not event.more_data:
                writer = current["writer"]
                if writer is not None:
                    await writer.commit()
                    result.uploads.append(StoredUpload(writer.key, current["name"], sniff(current["head"]),
                                                       writer.size))
                current = None


async def _file_data(
    store: FileStore, result: MessageForm, limits: _Limits, written: list[FileWriter], current: dict[str, Any],
    event: Data,
) -> None:
    data = event.data
    if current["writer"] is None:
        if not data and not current["raw"]:
            return  # an empty file input
        opened = current["writer"] = store.open_writer()
        written.append(opened)
    writer: FileWriter = current["writer"]
    if writer.size + len(data) > limits.per_file:
        raise attachment_too_large(limits.per_file)
    limits.total += len(data)
    if limits.total > limits.per_message:
        raise message_too_large(limits.per_message)
    if len(current["head"]) < SNIFF_BYTES:
        current["head"] += data[: SNIFF_BYTES - len(current["head"])]
    await writer.write(data)
