"""The media forwarding unit for video calls, built on aiortc.

Imports nothing from ``lotse.platform`` or ``lotse.engine``.
"""
