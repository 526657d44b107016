"""The flow engine: load, check, run and test support flows.

Pure by design: it imports nothing from ``lotse.platform`` or ``lotse.media``
(nor Quart or Tortoise) and reaches the outside only through the ports in
``lotse.engine.ports``.
"""
