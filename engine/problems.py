"""Problems: what the engine says when a flow, an expression or an input is wrong.

Errors are data here, not exceptions: a content editor running ``lotse flows
check`` must see every problem of a file at once, each with a position and a
hint, and never a traceback. Programming errors in the engine itself still
raise as usual.

Each code is stable (tests and the editor in the browser match on it); the
message is English because the authoring tools are English.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProblemCode(StrEnum):
    """Stable identifiers of everything ``check`` and the runner can report."""

    # loading
    FILE_UNREADABLE = "file_unreadable"
    YAML_SYNTAX = "yaml_syntax"
    YAML_UNSUPPORTED = "yaml_unsupported"
    DUPLICATE_KEY = "duplicate_key"
    DUPLICATE_STEP = "duplicate_step"
    DUPLICATE_OPTION = "duplicate_option"
    SCHEMA = "schema"
    UNKNOWN_KEY = "unknown_key"
    MISSING_KEY = "missing_key"
    # structure
    FLOW_ID_MISMATCH = "flow_id_mismatch"
    UNKNOWN_STEP = "unknown_step"
    UNREACHABLE_STEP = "unreachable_step"
    NO_END_REACHABLE = "no_end_reachable"
    UNINTERRUPTED_CYCLE = "uninterrupted_cycle"
    NO_DEFAULT_CASE = "no_default_case"
    MISSING_OUTCOME_DEFAULT = "missing_outcome_default"
    # catalogue
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_FACT = "unknown_fact"
    UNKNOWN_SUBFLOW = "unknown_subflow"
    BAD_ARGUMENTS = "bad_arguments"
    BAD_SUBFLOW_INPUTS = "bad_subflow_inputs"
    UNKNOWN_ERROR_CODE = "unknown_error_code"
    # actions
    MISSING_CONFIRM = "missing_confirm"
    MISSING_ERROR_DEFAULT = "missing_error_default"
    # expressions
    EXPRESSION_SYNTAX = "expression_syntax"
    UNKNOWN_NAME = "unknown_name"
    FORBIDDEN_EXPRESSION = "forbidden_expression"
    EXPRESSION_FAILED = "expression_failed"
    # translations
    MISSING_TRANSLATION = "missing_translation"
    FUZZY_TRANSLATION = "fuzzy_translation"
    # running
    INVALID_INPUT = "invalid_input"
    STUCK = "stuck"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, where it is, and what to do about it.

    ``line`` and ``column`` are 1-based; 0 means "the file as a whole".
    """

    code: ProblemCode
    message: str
    hint: str = ""
    path: str = ""
    line: int = 0
    column: int = 0

    def format(self) -> str:
        """Return the ``path:line:column: message`` line that ``check`` prints."""
        where = f"{self.path}:{self.line}:{self.column}" if self.path else f"{self.line}:{self.column}"
        text = f"{where}: {self.message} [{self.code}]"
        return f"{text}\n    hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, str | int]:
        """Return the problem as JSON-ready data (for the editor in the browser)."""
        return {
            "code": str(self.code),
            "message": self.message,
            "hint": self.hint,
            "path": self.path,
            "line": self.line,
            "column": self.column,
        }
