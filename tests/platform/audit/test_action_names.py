"""Every action name the platform records has a description in plain words (de, nl).

The names are collected from the code itself: the action argument of
``unit``, ``record``, ``require`` and ``audit_row``, ``action=`` keywords
(``u.audit(..., action=...)``), and literals handed to any helper whose
parameter is called ``action``; a name held in a local variable is followed
to the literals assigned to it. The flow actions' names count too: a refused
flow action is recorded under its catalogue name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from lotse.platform.audit.queries import ACTION_DESCRIPTIONS, describe_action
from lotse.platform.help.adapters import HANDLERS

PLATFORM = Path(__file__).resolve().parents[3] / "platform"
ACTION_ARGUMENT = {"unit": 2, "record": 2, "require": 4, "audit_row": 1}
# Names built with an f-string, and every value they take.
BUILT_NAMES = {
    "auth.password.{purpose.value}": ["auth.password.welcome", "auth.password.reset"],
}


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return call.func.id if isinstance(call.func, ast.Name) else None


def _function_defs(trees: list[ast.Module]) -> dict[str, set[int]]:
    """Map function names to the positions of their ``action`` parameter."""
    positions: dict[str, set[int]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
                if "action" in names:
                    positions.setdefault(node.name, set()).add(names.index("action"))
    return positions


def _literals(node: ast.expr, scope: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _literals(node.body, scope)
        yield from _literals(node.orelse, scope)
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"  # type: ignore[attr-defined]
            for part in node.values
        )
        assert text in BUILT_NAMES, f"an action name built as f-string {text!r}: list its values in BUILT_NAMES"
        yield from BUILT_NAMES[text]
    elif isinstance(node, ast.Name):
        for assign in ast.walk(scope):
            if isinstance(assign, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == node.id for target in assign.targets
            ):
                yield from _literals(assign.value, scope)


def recorded_action_names() -> dict[str, str]:
    """Return every action name the code records, with where it is."""
    files = sorted(PLATFORM.rglob("*.py"))
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in files]
    helpers = _function_defs(trees)
    found: dict[str, str] = {}
    for path, tree in zip(files, trees, strict=True):
        scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for scope in [tree, *scopes]:
            for call in ast.walk(scope):
                if not isinstance(call, ast.Call):
                    continue
                name = _called(call)
                positions = helpers.get(name or "", set()) | (
                    {ACTION_ARGUMENT[name]} if name in ACTION_ARGUMENT else set()
                )
                arguments = [call.args[i] for i in positions if i < len(call.args)]
                arguments += [k.value for k in call.keywords if k.arg == "action"]
                for argument in arguments:
                    for text in _literals(argument, scope):
                        if "." in text:  # action names are "domain.verb"; argparse's "store_true" is not one
                            found.setdefault(text, f"{path.relative_to(PLATFORM.parent)}:{call.lineno}")
    for name in HANDLERS:
        found.setdefault(name, "platform/help/adapters.py (flow action)")
    return found


def test_the_scan_finds_the_names_it_should():
    names = recorded_action_names()
    # One of each way of naming an action, so that a broken scan cannot pass quietly.
    for expected in ("account.create", "auth.password.reset", "auth.block", "auth.two_factor",
                     "auth.password_reset.request", "caseload.link_request_accept", "audit.read",
                     "mail.give_up", "account.send_unblock_link"):
        assert expected in names
    assert len(names) > 60


def test_every_recorded_action_has_a_description():
    missing = {name: where for name, where in recorded_action_names().items() if name not in ACTION_DESCRIPTIONS}
    assert missing == {}, "add these to ACTION_DESCRIPTIONS (and translate them): " + repr(missing)


@pytest.mark.parametrize("language", ["de", "nl"])
def test_every_description_is_translated(language):
    untranslated = [
        name for name, text in ACTION_DESCRIPTIONS.items()
        if text.render(language) == text.msgid  # type: ignore[union-attr]
    ]
    assert untranslated == []


def test_a_recorded_name_is_described_and_an_unknown_one_stays_raw():
    assert describe_action("auth.password.change").render("de") == "Passwort geändert"  # type: ignore[union-attr]
    assert describe_action("auth.recovery_code.use").render("nl") == "Herstelcode gebruikt"  # type: ignore[union-attr]
    assert describe_action("something.new") == "something.new"


@pytest.mark.parametrize(("role", "language", "words"), [
    ("therapist", "de", "Therapeut:in"), ("secretary", "nl", "Secretaresse"),
    ("system", "de", "Lotse (automatisch)"), ("anonymous", "nl", "Niet aangemeld"), ("someone_new", "de", "someone_new"),
])
def test_roles_are_named_from_one_table(role, language, words):
    from lotse.platform import i18n
    from lotse.platform.accounts.models import Role
    from lotse.platform.accounts.roles import ROLE_NAMES, role_label

    token = i18n.current_locale.set(language)
    try:
        assert role_label(role) == words
        if role in {r.value for r in Role}:
            assert role_label(role) == str(ROLE_NAMES[Role(role)])
    finally:
        i18n.current_locale.reset(token)


def test_sessions_and_links_hash_with_one_function():
    import hashlib

    from lotse.platform.accounts import sessions, tokens

    assert tokens.hash_secret("abc") == hashlib.sha256(b"abc").hexdigest()
    assert sessions.hash_secret is tokens.hash_secret
