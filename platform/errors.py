"""The platform's one error family.

::

    PlatformError                 code, HTTP status, lazily translated message, field errors
    ├── NotPermittedError         403  not_permitted
    ├── NotSignedInError          401  not_signed_in
    ├── NotFoundError             404  not_found
    ├── ValidationError           422  invalid (fields: {field: message})
    ├── ConflictError             409  e.g. email_taken, externally_managed
    ├── LimitError                413  e.g. too_large
    └── UnsupportedMediaTypeError 415  a state-changing API call not sent as JSON

The ``code`` is stable: API clients and the flow engine's ``on_error``
mappings use it. The message is a ``LazyText`` rendered in the reader's
language when the error is shown, never when it is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lotse.platform.i18n import LazyText, _l


class PlatformError(Exception):
    status = 400
    default_code = "bad_request"
    default_message: LazyText = _l("The request could not be processed.")

    def __init__(
        self,
        code: str | None = None,
        message: LazyText | None = None,
        *,
        fields: Mapping[str, LazyText] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.default_message
        self.fields = dict(fields or {})
        self.data = dict(data or {})
        super().__init__(f"{self.code}: {self.message.msgid}")

    def to_json(self, language: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message.render(language)}
        if self.fields:
            body["fields"] = {name: text.render(language) for name, text in self.fields.items()}
        if self.data:
            body["data"] = self.data
        return body


class NotPermittedError(PlatformError):
    status = 403
    default_code = "not_permitted"
    default_message = _l("You are not allowed to do this.")


class NotSignedInError(PlatformError):
    status = 401
    default_code = "not_signed_in"
    default_message = _l("Please sign in first.")


class NotFoundError(PlatformError):
    status = 404
    default_code = "not_found"
    default_message = _l("This does not exist, or you cannot see it.")


class ValidationError(PlatformError):
    status = 422
    default_code = "invalid"
    default_message = _l("Please correct the marked fields.")


class ConflictError(PlatformError):
    status = 409
    default_code = "conflict"
    default_message = _l("This conflicts with the current state.")


class LimitError(PlatformError):
    status = 413
    default_code = "too_large"
    default_message = _l("This is larger than allowed.")


class UnsupportedMediaTypeError(PlatformError):
    status = 415
    default_code = "unsupported_media_type"
    default_message = _l("Please send this request as application/json.")


def field_error(field: str, message: LazyText, code: str = "invalid") -> ValidationError:
    """Return a validation error about one field."""
    return ValidationError(code, fields={field: message})
