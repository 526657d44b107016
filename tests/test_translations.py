"""Every platform string has a German and a Dutch translation, and the checker catches what it should.

The first test is the project check itself (the same as ``python -m
lotse.platform.i18n_check``); the rest run the checker on small made-up
trees, so that a checker which quietly stopped finding problems fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lotse.platform.i18n_check import check, extract_uses, main

REPO = Path(__file__).resolve().parent.parent

HEADER = """\
msgid ""
msgstr ""
"Project-Id-Version: lotse 0.1.0\\n"
"Language: {lang}\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=utf-8\\n"
"Content-Transfer-Encoding: 8bit\\n"

"""


def test_every_platform_string_is_translated_into_german_and_dutch() -> None:
    problems = check(REPO / "platform", REPO / "locales", base=REPO)
    assert not problems, "\n" + "\n".join(str(p) for p in problems)


def test_the_command_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lotse.platform.i18n_check", "--platform-dir", str(REPO / "platform"),
         "--locales-dir", str(REPO / "locales")],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Translations complete" in result.stdout


def test_extraction_sees_python_and_templates() -> None:
    uses = {(u.path, u.msgid) for u in extract_uses(REPO / "platform", REPO)}
    assert ("platform/errors.py", "You are not allowed to do this.") in uses
    assert ("platform/templates/base.html", "Skip to content") in uses


# -- the checker on made-up trees --------------------------------------------------------------


def _tree(tmp_path: Path, code: str, template: str, catalogues: dict[str, str]) -> tuple[Path, Path]:
    platform = tmp_path / "platform"
    (platform / "templates").mkdir(parents=True)
    (platform / "views.py").write_text(textwrap.dedent(code))
    (platform / "templates" / "page.html").write_text(textwrap.dedent(template))
    locales = tmp_path / "locales"
    for name, body in catalogues.items():
        lang, filename = name.split("/")
        folder = locales / lang / "LC_MESSAGES"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_text(HEADER.format(lang=lang) + textwrap.dedent(body))
    return platform, locales


CODE = """\
from lotse.platform.i18n import _, _l, ngettext, pgettext
A = _l("Hello %(name)s")
B = _("Goodbye")
C = ngettext("%(num)s file", "%(num)s files", 2)
D = pgettext("menu", "Open")
E = _(some_variable)
"""
TEMPLATE = """\
<p>{{ _("Welcome to %(place)s", place=x) }}</p>
"""
GOOD = """\
msgid "Hello %(name)s"
msgstr "{hello} %(name)s"

msgid "Goodbye"
msgstr "{bye}"

msgid "%(num)s file"
msgid_plural "%(num)s files"
msgstr[0] "{one}"
msgstr[1] "%(num)s {many}"

msgctxt "menu"
msgid "Open"
msgstr "{open}"

msgid "Welcome to %(place)s"
msgstr "{welcome} %(place)s"
"""
DE = GOOD.format(hello="Hallo", bye="Auf Wiedersehen", one="eine Datei", many="Dateien", open="Öffnen", welcome="Willkommen in")
NL = GOOD.format(hello="Hallo", bye="Tot ziens", one="één bestand", many="bestanden", open="Openen", welcome="Welkom in")


def _problems(tmp_path: Path, de: str = DE, nl: str = NL, extra: dict[str, str] | None = None,
              template: str = TEMPLATE, msgfmt: bool = False) -> list[str]:
    platform, locales = _tree(tmp_path, CODE, template, {"de/core.po": de, "nl/core.po": nl, **(extra or {})})
    return [str(p) for p in check(platform, locales, base=tmp_path, msgfmt=msgfmt)]


def test_a_complete_tree_has_no_problems(tmp_path: Path) -> None:
    assert _problems(tmp_path) == []


def test_a_missing_string_is_reported_with_file_and_line(tmp_path: Path) -> None:
    nl = NL.replace('msgid "Goodbye"\nmsgstr "Tot ziens"\n', "")
    assert _problems(tmp_path, nl=nl) == ['platform/views.py:3: msgid "Goodbye" missing in nl']


def test_a_missing_template_string_is_reported(tmp_path: Path) -> None:
    problems = _problems(tmp_path, template=TEMPLATE + '{{ _("New text") }}\n')
    assert problems == [
        'platform/templates/page.html:2: msgid "New text" missing in de',
        'platform/templates/page.html:2: msgid "New text" missing in nl',
    ]


def test_context_matters(tmp_path: Path) -> None:
    de = DE.replace('msgctxt "menu"\n', "")
    assert _problems(tmp_path, de=de) == ["platform/views.py:5: msgid \"Open\" (context 'menu') missing in de"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('msgstr "Auf Wiedersehen"', 'msgstr ""', 'msgid "Goodbye" has an empty translation'),
        ('msgstr "Hallo %(name)s"', 'msgstr "Hallo"', "lacks placeholder(s) %(name)s"),
        ('msgstr "Hallo %(name)s"', 'msgstr "Hallo %(nam)s %(name)s"', "unknown placeholder(s) %(nam)s"),
        ('msgstr "Willkommen in %(place)s"', 'msgstr "100% %(place)s"', "lone %"),
        ('msgstr[1] "%(num)s Dateien"', 'msgstr[1] "Dateien"', "plural translation lacks placeholder(s) %(num)s"),
    ],
)
def test_bad_translations_are_reported(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in DE
    problems = _problems(tmp_path, de=DE.replace(old, new))
    assert any(expected in p and p.startswith("locales/de/LC_MESSAGES/core.po:") for p in problems), problems


def test_fuzzy_entries_do_not_count(tmp_path: Path) -> None:
    de = DE.replace('msgid "Goodbye"', '#, fuzzy\nmsgid "Goodbye"')
    problems = _problems(tmp_path, de=de)
    assert any('"Goodbye" is marked fuzzy' in p for p in problems)
    assert 'platform/views.py:3: msgid "Goodbye" missing in de' in problems


def test_flows_catalogue_is_no_home_for_platform_strings(tmp_path: Path) -> None:
    nl = NL.replace('msgid "Goodbye"\nmsgstr "Tot ziens"\n', "")
    problems = _problems(tmp_path, nl=nl, extra={"nl/flows.po": 'msgid "Goodbye"\nmsgstr "Tot ziens"\n'})
    assert problems == ['platform/views.py:3: msgid "Goodbye" missing in nl']


def test_a_string_in_two_files_of_one_language_is_reported(tmp_path: Path) -> None:
    problems = _problems(tmp_path, extra={"de/other.po": 'msgid "Goodbye"\nmsgstr "Tschüss"\n'})
    assert len(problems) == 1
    assert "is also in locales/de/LC_MESSAGES/core.po" in problems[0]


def test_a_template_jinja_cannot_parse_is_a_problem(tmp_path: Path) -> None:
    problems = _problems(tmp_path, template=TEMPLATE + "{% if %}\n")
    assert len(problems) == 1
    assert problems[0].startswith("platform/templates/page.html:2: cannot be read for translation")


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU msgfmt (package gettext) is not installed")
def test_msgfmt_finds_a_newline_mismatch(tmp_path: Path) -> None:
    de = DE.replace('msgstr "Auf Wiedersehen"', 'msgstr "Auf Wiedersehen\\n"')
    problems = _problems(tmp_path, de=de, msgfmt=True)
    assert any("msgfmt:" in p and "core.po" in p for p in problems), problems
    assert _problems(tmp_path / "clean", msgfmt=True) == []


def test_main_exits_non_zero_on_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    platform, locales = _tree(tmp_path, CODE, TEMPLATE, {"de/core.po": DE, "nl/core.po": ""})
    assert main(["--platform-dir", str(platform), "--locales-dir", str(locales), "--no-msgfmt"]) == 1
    assert "missing in nl" in capsys.readouterr().out
