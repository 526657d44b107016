"""The migrations are the schema: every model change comes with one."""

from __future__ import annotations

from lotse.platform.db import pending_model_changes


async def test_every_model_change_has_a_migration():
    changes = await pending_model_changes()
    assert not changes, (
        "Models changed without a migration; run `lotse db makemigrations --name <what>` and commit it:\n"
        + "\n".join(changes)
    )


async def test_the_app_database_is_built_by_the_migrations(app):
    from tortoise import connections

    conn = connections.get("default")
    applied = await conn.execute_query_dict("SELECT app, name FROM tortoise_migrations")
    assert ("lotse", "0001_initial") in {(row["app"], row["name"]) for row in applied}


async def test_no_table_description_holds_a_semicolon():
    """Tortoise 1.1.9's migration executor splits SQL scripts on ';', also inside
    a table comment (the model's docstring), and start-up then fails with a syntax error."""
    from tortoise.context import TortoiseContext

    from lotse.platform.db import tortoise_config

    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config("sqlite://:memory:"))
        found = {
            model.__name__: model._meta.table_description
            for model in ctx.apps.get_models_iterable()
            if ";" in (model._meta.table_description or "")
        }
    assert not found, f"Rephrase the first paragraph of these model docstrings without ';': {found}"
