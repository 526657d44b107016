"""Map the top-level code folders into the ``lotse`` namespace.

``platform/`` has no ``__init__.py`` (it would shadow the standard library's
``platform`` module), and there is no ``lotse/__init__.py`` anywhere, so the
package list is computed here; a sub-package missing from it would work in an
editable install and break in a real one.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = {"engine": "engine", "platform": "platform", "media": "media", "flows": "flows", "locales": "locales"}


def packages() -> list[str]:
    names: list[str] = []
    for name, folder in FOLDERS.items():
        names.append(f"lotse.{name}")
        names += [f"lotse.{name}.{sub}" for sub in find_namespace_packages(where=folder) if "__pycache__" not in sub]
    return names


setup(
    packages=packages(),
    package_dir={f"lotse.{name}": folder for name, folder in FOLDERS.items()},
    package_data={
        "lotse.engine": ["*.json", "py.typed"],
        "lotse.platform": ["templates/**/*", "static/**/*"],
        "lotse.flows": ["*.yaml", "tests/*.yaml"],
        "lotse.locales": ["*/LC_MESSAGES/*.po", "*.pot"],
        "lotse.media": ["py.typed"],
    },
    include_package_data=False,
)
