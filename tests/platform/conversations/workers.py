"""Real Hypercorn worker processes sharing a real Redis, for tests and the benchmark.

``RedisServer`` starts ``redis-server`` on a free port (no persistence) and
stops it; ``Worker`` starts ``hypercorn`` with the real app in its own
process, configured by environment variables like a deployment.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class Worker:
    """One Hypercorn process serving the real app."""

    def __init__(self, data_dir: Path, redis_url: str | None, secret_key: str, base_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LOTSE_DATA_DIR": str(data_dir),
            "LOTSE_SECRET_KEY": secret_key,
            "LOTSE_BASE_URL": base_url,
            "LOTSE_FLOWS_DIR": str(REPO / "flows"),
            "LOTSE_LOCALES_DIR": str(REPO / "locales"),
        }
        if redis_url:
            self.env["LOTSE_REDIS_URL"] = redis_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.log_path = Path(self.env["LOTSE_DATA_DIR"]) / f"worker-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "lotse.platform.app:create_app()"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self._log, cwd=str(data_dir_parent(self.env)))
        return self.wait_until_serving()

    def wait_until_serving(self) -> Worker:
        """Return once the started process answers (its start-up is done), or raise with its log."""
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("worker died: " + self.log_path.read_text()[-2000:])
            try:
                if httpx.get(self.url + "/static/lotse.css", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("worker did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def data_dir_parent(env: dict[str, str]) -> Path:
    return Path(env["LOTSE_DATA_DIR"]).parent
