"""Check that every string of the platform exists in German and in Dutch.

    python -m lotse.platform.i18n_check [--platform-dir DIR] [--locales-dir DIR]

English is the source language, so a string that was wrapped in ``_()`` but
never translated would silently show up in English. This check extracts every
message id the platform uses — Python code (``_``, ``_l``, ``gettext``,
``ngettext``, ``pgettext``) and Jinja templates (pages and mails) — with
Babel's own extractors, the same ones ``pybabel extract`` uses, and demands
for each a translation in some ``locales/de/LC_MESSAGES/*.po`` and some
``locales/nl/LC_MESSAGES/*.po``. ``flows.po`` holds the flows' strings and is
checked by the flow engine, so it does not count as a home for platform
strings; it is still read for the file-level checks below.

Every ``.po`` file is also checked on its own: no fuzzy or empty entries, the
same ``%(name)s`` placeholders in the translation as in the message id, no
message in two files of one language (they are merged at run time, so the
second would silently win), and GNU ``msgfmt --check --statistics`` when it
is installed (it catches a ``\\n`` mismatch that Babel misses).

Problems are printed as ``file:line: ...`` and the exit status is 1 when
there is any.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract as babel_extract
from babel.messages.pofile import read_po
from jinja2 import TemplateSyntaxError

LANGUAGES: tuple[str, ...] = ("de", "nl")
EXCLUDED_CATALOGUES: frozenset[str] = frozenset({"flows.po"})

KEYWORDS: dict[str, object] = {
    "_": None,
    "_l": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
}

# Pages and mails (``mail/<kind>.subject|.txt|.html``) in any ``templates`` folder.
TEMPLATE_SUFFIXES: frozenset[str] = frozenset({".html", ".txt", ".subject"})

# Templates are rendered with new-style gettext (``_("Hi %(name)s", name=x)``);
# ``silent`` off, so that a template Jinja cannot parse is a problem, not a skip.
JINJA_OPTIONS: dict[str, str] = {"newstyle_gettext": "true", "silent": "false", "extensions": "jinja2.ext.i18n"}

PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[sdifr]")
# Any percent sign that is neither ``%%`` nor a named placeholder.
STRAY_PERCENT = re.compile(r"%(?!%|\(\w+\)[#0 +-]*\d*(?:\.\d+)?[sdifr])")

Key = tuple[str | None, str]


@dataclass(frozen=True)
class Use:
    """One place where a message id is used."""

    path: str
    line: int
    msgid: str
    plural: str | None
    context: str | None


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


@dataclass(frozen=True)
class Entry:
    """One translated message of one ``.po`` file."""

    path: str
    line: int
    msgid: str
    plural: str | None
    context: str | None
    strings: tuple[str, ...]
    fuzzy: bool


def source_files(platform_dir: Path) -> Iterator[tuple[Path, str]]:
    """Yield the platform's Python files and templates with the Babel method that reads each."""
    for path in sorted(platform_dir.rglob("*")):
        parts = path.relative_to(platform_dir).parts
        if not path.is_file() or any(part.startswith((".", "_")) for part in parts[:-1]) or parts[0] == "static":
            continue
        if path.suffix == ".py":
            yield path, "python"
        elif path.suffix in TEMPLATE_SUFFIXES and "templates" in parts[:-1]:
            yield path, "jinja2.ext:babel_extract"


def extract_uses(platform_dir: Path, relative_to: Path | None = None) -> list[Use]:
    """Return every translatable message used in the platform's code and templates."""
    uses, problems = extract(platform_dir, relative_to)
    if problems:
        raise ValueError("\n".join(str(p) for p in problems))
    return uses


def extract(platform_dir: Path, relative_to: Path | None = None) -> tuple[list[Use], list[Problem]]:
    """Return the messages in use, and the files that could not be read."""
    base = relative_to or platform_dir.parent
    uses: list[Use] = []
    problems: list[Problem] = []
    for path, method in source_files(platform_dir):
        shown = _display(path, base)
        options = JINJA_OPTIONS if method.startswith("jinja2") else {}
        try:
            with path.open("rb") as fh:
                found = list(babel_extract(method, fh, keywords=KEYWORDS, options=options))  # type: ignore[arg-type]
        except (TemplateSyntaxError, SyntaxError, UnicodeDecodeError) as error:
            line = getattr(error, "lineno", 0) or 0
            problems.append(Problem(shown, line, f"cannot be read for translation: {error}"))
            continue
        for line, message, _comments, context in found:
            if isinstance(message, tuple):
                msgid, plural = message[0], (message[1] if len(message) > 1 else None)
            else:
                msgid, plural = message, None
            if msgid:
                uses.append(Use(shown, line, msgid, plural, context))
    return uses, problems


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def read_entries(po: Path, base: Path) -> tuple[list[Entry], list[Problem]]:
    """Read a ``.po`` file into entries; a file Babel cannot read is a problem."""
    shown = _display(po, base)
    try:
        with po.open("rb") as fh:
            catalog = read_po(fh, abort_invalid=True)
    except Exception as error:  # Babel raises several kinds for a broken file
        return [], [Problem(shown, getattr(error, "lineno", 0) or 0, f"cannot be read: {error}")]
    entries: list[Entry] = []
    for message in catalog:
        if not message.id:
            continue
        msgid = str(message.id[0] if isinstance(message.id, tuple | list) else message.id)
        plural = str(message.id[1]) if isinstance(message.id, tuple | list) and len(message.id) > 1 else None
        strings = tuple(message.string) if isinstance(message.string, tuple | list) else (message.string or "",)
        line = message.lineno or 0
        entries.append(Entry(shown, line, msgid, plural, message.context, strings, message.fuzzy))
    return entries, []


def check_entry(entry: Entry) -> Iterator[Problem]:
    """Yield what is wrong with one translated message on its own."""
    label = _label(entry.msgid, entry.context)
    if entry.fuzzy:
        yield Problem(entry.path, entry.line, f"msgid {label} is marked fuzzy")
    if not all(s.strip() for s in entry.strings):
        yield Problem(entry.path, entry.line, f"msgid {label} has an empty translation")
        return
    source_names = set(PLACEHOLDER.findall(entry.msgid))
    if entry.plural is not None:
        source_names |= set(PLACEHOLDER.findall(entry.plural)) | {"num"}
    source_has_params = bool(source_names)
    for index, text in enumerate(entry.strings):
        names = set(PLACEHOLDER.findall(text))
        extra = names - source_names
        if extra:
            yield Problem(entry.path, entry.line,
                          f"msgid {label}: translation uses unknown placeholder(s) {_names(extra)}")
        if entry.plural is None:
            missing = source_names - names
            if missing:
                yield Problem(entry.path, entry.line,
                              f"msgid {label}: translation lacks placeholder(s) {_names(missing)}")
        elif index == len(entry.strings) - 1:
            # The last (plural) form must show every value; singular forms may leave %(num)s out.
            missing = set(PLACEHOLDER.findall(entry.plural)) - names
            if missing:
                yield Problem(entry.path, entry.line,
                              f"msgid {label}: plural translation lacks placeholder(s) {_names(missing)}")
        if source_has_params and STRAY_PERCENT.search(text):
            yield Problem(entry.path, entry.line,
                          f"msgid {label}: translation has a lone %; write %% for a percent sign")
        if entry.msgid.count("%%") != text.count("%%"):
            yield Problem(entry.path, entry.line, f"msgid {label}: %% differs between msgid and translation")


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"%({name})s" for name in sorted(names))


def _label(msgid: str, context: str | None) -> str:
    shown = msgid if len(msgid) <= 60 else msgid[:57] + "..."
    text = '"' + shown.replace("\n", "\\n").replace('"', '\\"') + '"'
    return f"{text} (context {context!r})" if context else text


def run_msgfmt(po: Path, base: Path) -> list[Problem]:
    """Run GNU msgfmt's own checks; fuzzy and untranslated entries count as problems."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        return []
    result = subprocess.run(  # noqa: S603 - a fixed program on our own files
        [msgfmt, "--check", "--statistics", "-o", "/dev/null", str(po)],
        capture_output=True, text=True, check=False,
    )
    shown = _display(po, base)
    problems: list[Problem] = []
    output = result.stderr.strip()
    if result.returncode != 0:
        for line in output.splitlines() or ["msgfmt failed"]:
            problems.append(Problem(shown, _msgfmt_line(line), f"msgfmt: {line}"))
    elif re.search(r"\b\d+ (fuzzy|untranslated)", output):
        problems.append(Problem(shown, 0, f"msgfmt: {output}"))
    return problems


def _msgfmt_line(text: str) -> int:
    match = re.search(r"\.po:(\d+):", text)
    return int(match.group(1)) if match else 0


def catalogue_files(locales_dir: Path, language: str) -> list[Path]:
    folder = locales_dir / language / "LC_MESSAGES"
    return sorted(folder.glob("*.po")) if folder.exists() else []


def check(
    platform_dir: Path, locales_dir: Path, *, base: Path | None = None, msgfmt: bool = True,
    uses: list[Use] | None = None,
) -> list[Problem]:
    """Return every problem of the platform's translations (empty when all is well)."""
    base = base or platform_dir.parent
    problems: list[Problem] = []
    known: dict[str, dict[Key, Entry]] = {}
    for language in LANGUAGES:
        files = catalogue_files(locales_dir, language)
        if not files:
            problems.append(Problem(_display(locales_dir, base), 0, f"no catalogues for {language}"))
        homes: dict[Key, Entry] = {}
        seen: dict[Key, Entry] = {}
        for po in files:
            entries, unreadable = read_entries(po, base)
            problems += unreadable
            if msgfmt and not unreadable:
                problems += run_msgfmt(po, base)
            for entry in entries:
                problems += check_entry(entry)
                key = (entry.context, entry.msgid)
                if key in seen:
                    first = seen[key]
                    problems.append(Problem(entry.path, entry.line,
                                            f"msgid {_label(entry.msgid, entry.context)} is also in "
                                            f"{first.path}:{first.line}; keep it in one file"))
                seen.setdefault(key, entry)
                if po.name not in EXCLUDED_CATALOGUES and not entry.fuzzy and all(entry.strings):
                    homes.setdefault(key, entry)
        known[language] = homes

    if uses is None:
        uses, unreadable = extract(platform_dir, base)
        problems += unreadable
    for use in uses:
        key = (use.context, use.msgid)
        for language in LANGUAGES:
            found = known[language].get(key)
            if found is None:
                problems.append(Problem(use.path, use.line,
                                        f"msgid {_label(use.msgid, use.context)} missing in {language}"))
            elif use.plural is not None and found.plural is None:
                problems.append(Problem(found.path, found.line,
                                        f"msgid {_label(use.msgid, use.context)} is used with a plural "
                                        f"({use.path}:{use.line}) but translated without one"))
    return _unique(problems)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    kept: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            kept.append(problem)
    return kept


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(prog="python -m lotse.platform.i18n_check", description=__doc__.splitlines()[0])
    parser.add_argument("--platform-dir", type=Path, default=here, help="the platform's code and templates")
    parser.add_argument("--locales-dir", type=Path, default=None, help="the folder holding de/ and nl/")
    parser.add_argument("--no-msgfmt", action="store_true", help="skip GNU msgfmt even when installed")
    args = parser.parse_args(argv)
    locales_dir = args.locales_dir
    if locales_dir is None:
        from lotse.platform.config import _shipped_dir

        locales_dir = _shipped_dir("lotse.locales")
    uses, unreadable = extract(args.platform_dir)
    problems = unreadable + check(args.platform_dir, locales_dir, msgfmt=not args.no_msgfmt, uses=uses)
    for problem in problems:
        print(problem)  # noqa: T201 - this is a command-line report
    distinct = len({(u.context, u.msgid) for u in uses})
    if problems:
        print(f"{len(problems)} translation problem(s); {distinct} message ids in use.", file=sys.stderr)  # noqa: T201
        return 1
    where = "" if shutil.which("msgfmt") or args.no_msgfmt else " (msgfmt not installed: its checks were skipped)"
    print(f"Translations complete: {distinct} message ids in German and Dutch{where}.")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
