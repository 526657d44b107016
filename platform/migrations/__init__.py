"""Schema migrations of the ``lotse`` app (Tortoise ORM's own migrations).

Written by ``lotse db makemigrations`` after a model change and applied by
``lotse db migrate`` and at every start. ``tests/platform/test_migrations.py``
fails when a model change has no migration.
"""
