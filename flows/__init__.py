"""The shipped support flows (YAML content, no code).

A package only so that the flows and their scenario tests ship inside the
distribution and can be found with ``importlib.resources``.
"""
