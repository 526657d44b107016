"""``lotse media serve``: the media forwarding unit as its own process.

Rooms then live in one or more such processes instead of the app process;
the app finds them through ``LOTSE_MEDIA_URL`` (``ws://host:port``, several
separated by commas; a call is pinned to one when it starts) and signs join
tokens with ``LOTSE_MEDIA_SECRET``, which both sides must share.
"""

from __future__ import annotations

import click


@click.group()
def media() -> None:
    """The media forwarding unit for video calls."""


@media.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; browsers send media to this machine's addresses.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--cap", default=12, show_default=True, type=click.IntRange(2, 12),
              help="Most participants per room (the platform enforces each organisation's own cap first).")
@click.option("--codec", default="VP8", show_default=True, type=click.Choice(["VP8", "H264"]))
@click.option("--stats-interval", type=float, default=None, help="Print JSON statistics every N seconds.")
@click.option("--log-level", default="WARNING", show_default=True)
def serve(host: str, port: int, cap: int, codec: str, stats_interval: float | None, log_level: str) -> None:
    """Serve call rooms over WebSockets (needs LOTSE_MEDIA_SECRET)."""
    import os

    from lotse.media.server import SECRET_ENV, main

    if not os.environ.get(SECRET_ENV):
        raise click.UsageError(f"set {SECRET_ENV} to the secret the platform signs join tokens with")
    argv = ["--host", host, "--port", str(port), "--cap", str(cap), "--codec", codec, "--log-level", log_level]
    if stats_interval:
        argv += ["--stats-interval", str(stats_interval)]
    raise SystemExit(main(argv))
