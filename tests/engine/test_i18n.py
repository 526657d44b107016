"""Extraction contexts, run-time look-up, and missing/fuzzy reporting."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract
from click.testing import CliRunner

from lotse.engine.catalogue import FileCatalogue
from lotse.engine.checks import check_paths
from lotse.engine.cli import make_flows_group
from lotse.engine.i18n import PoTranslations, extract_flows, load_po, po_path
from lotse.engine.problems import ProblemCode
from tests.engine.support import FLOWS, load


def extracted(name: str) -> dict[str, str]:
    with (FLOWS / f"{name}.yaml").open("rb") as handle:
        return {context: msgid for _, msgid, _, context in extract(extract_flows, handle)}  # type: ignore[misc]


def test_extractor_contexts() -> None:
    found = extracted("therapist-can-log-in")
    assert found["therapist-can-log-in/title"] == "The therapist cannot log in"
    assert found["therapist-can-log-in/description"].startswith("Checks the account")
    assert found["therapist-can-log-in/account-state/text"] == "Does **{{ inputs.therapist.name }}** have an account?"
    assert found["therapist-can-log-in/account-state/dormant/label"] == "Yes, but unused for a long time"
    assert found["therapist-can-log-in/reactivate/confirm"].startswith("Reactivate the account")
    assert found["therapist-can-log-in/create-account/email/label"] == "E-mail address"
    assert found["therapist-can-log-in/done/text"] == "The therapist can log in."
    features = extracted("features")
    assert features["features/checks/mail/label"] == "Mail works"
    assert features["features/details/code/help"] == "Three capitals"


def test_extractor_raises_for_a_broken_file() -> None:
    handle = io.BytesIO(b"flow: [unclosed")
    with pytest.raises(ValueError, match="cannot extract"):
        list(extract_flows(handle, [], [], {}))


def _translate_all(locales: Path, language: str, text: str) -> None:
    path = po_path(locales, language)
    content = path.read_text(encoding="utf-8")
    blocks = content.split("\n\n")
    out = []
    for block in blocks:
        if "msgctxt" in block and 'msgstr ""' in block:
            block = block.replace('msgstr ""', f'msgstr "{text}"')
        out.append(block)
    path.write_text("\n\n".join(out), encoding="utf-8")


def test_extract_translate_check_and_fuzzy(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "login-help.yaml").write_bytes((FLOWS / "login-help.yaml").read_bytes())
    locales = tmp_path / "locales"
    catalogue = FileCatalogue.from_data({"actions": {}, "facts": {}})
    group = make_flows_group(lambda: catalogue)
    cli = CliRunner()
    result = cli.invoke(group, ["extract", "--flows-dir", str(flows), "--locales-dir", str(locales)])
    assert result.exit_code == 0, result.output
    problems = check_paths([flows], catalogue=catalogue, flows_dir=flows, locales_dir=locales)[str(flows / "login-help.yaml")]
    assert {p.code for p in problems} == {ProblemCode.MISSING_TRANSLATION}
    assert len(problems) == 2 * 8
    _translate_all(locales, "de", "Deutsch")
    _translate_all(locales, "nl", "Nederlands")
    assert load_po(po_path(locales, "de"))[("login-help/works/text", "Does it work now?")] == "Deutsch"
    assert check_paths([flows], catalogue=catalogue, locales_dir=locales)[str(flows / "login-help.yaml")] == []
    # The English changes: the translation becomes fuzzy, is not used, and survives the update.
    path = flows / "login-help.yaml"
    path.write_text(path.read_text().replace("Does it work now?", "Does it work now, really?"))
    problems = check_paths([flows], catalogue=catalogue, locales_dir=locales)[str(path)]
    assert {(p.code, p.line) for p in problems} == {(ProblemCode.FUZZY_TRANSLATION, 15)}
    assert len(problems) == 2
    result = cli.invoke(group, ["extract", "--flows-dir", str(flows), "--locales-dir", str(locales)])
    assert result.exit_code == 0, result.output
    po = po_path(locales, "de").read_text(encoding="utf-8")
    assert "#, fuzzy" in po
    assert 'msgstr "Deutsch"' in po
    translations = PoTranslations(locales)
    assert translations.translate("de", "login-help/works/text", "Does it work now, really?") is None
    assert translations.translate("de_DE", "login-help/browser/text", load("login-help").steps["browser"].text) == "Deutsch"  # type: ignore[union-attr]
    table = cli.invoke(group, ["translations", "--flows-dir", str(flows), "--locales-dir", str(locales)])
    assert "login-help" in table.output
    assert "de" in table.output


def test_failed_extract_writes_nothing(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "broken.yaml").write_text("flow: [unclosed\n")
    locales = tmp_path / "locales"
    po = po_path(locales, "de")
    po.parent.mkdir(parents=True)
    po.write_text('msgctxt "x/title"\nmsgid "X"\nmsgstr "Y"\n', encoding="utf-8")
    result = CliRunner().invoke(make_flows_group(lambda: None), ["extract", "--flows-dir", str(flows), "--locales-dir", str(locales)])
    assert result.exit_code != 0
    assert "nothing was written" in result.output
    assert 'msgstr "Y"' in po.read_text(encoding="utf-8")
    assert not (locales / "flows.pot").exists()


def test_extract_writes_files_others_can_read(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; catalogues are read by the app's own user and by translators' tools."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "login-help.yaml").write_bytes((FLOWS / "login-help.yaml").read_bytes())
    locales = tmp_path / "locales"
    group = make_flows_group(lambda: FileCatalogue.from_data({"actions": {}, "facts": {}}))
    result = CliRunner().invoke(group, ["extract", "--flows-dir", str(flows), "--locales-dir", str(locales)])
    assert result.exit_code == 0, result.output
    written = [locales / "flows.pot", po_path(locales, "de"), po_path(locales, "nl")]
    assert [oct(path.stat().st_mode & 0o777) for path in written] == [oct(0o644)] * 3
