"""A Milvus standalone server (the binary that the `milvus` package ships) for the tests.

Milvus 2.3 listens on every interface and has no setting to change that, so the tests run it only inside a
network namespace of its own (`unshare -rn`), where loopback is the only interface: see tests/test_stores.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Set in the namespace that the tests make for the standalone server.
INSIDE = "FASHION_LOOPBACK_ONLY"
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")


def available() -> str:
    """Why the standalone server cannot run here, or "" if it can."""
    try:
        import milvus  # noqa: F401
    except ImportError:
        return "the milvus package (its standalone server) is not installed: pip install '.[dev]'"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare and ip (util-linux, iproute2) are needed to keep the server on loopback"
    return ""


def namespaced(command: list[str], env: dict[str, str] | None = None) -> list[str]:
    """command, run in a network namespace of its own that has only loopback (brought up), with env set. Root
    keeps its users there (PostgreSQL's server refuses to run as root, and runuser needs them); anyone else gets a
    user namespace of their own, where they are root."""
    assigned = " ".join(f"{key}={shlex.quote(value)}" for key, value in {INSIDE: "1", **(env or {})}.items())
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    return [*unshare, "sh", "-c", f"ip link set lo up && {assigned} exec {shlex.join(command)}"]


def running(pid: int) -> bool:
    """Whether the process is alive (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def free(port: int) -> bool:
    """Whether the port can be bound as the package binds it (no SO_REUSEADDR)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class MilvusStandalone:
    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        """settings: milvus.yaml keys to change, dotted (`dataCoord.segment.maxSize`)."""
        self.settings = dict(settings or {})
        self.folder = Path(tempfile.mkdtemp(prefix="fashion-milvus-standalone-"))
        self.server: Any = None
        self.spec = ""

    def start(self) -> MilvusStandalone:
        if not os.environ.get(INSIDE):
            raise RuntimeError("the standalone server runs only in a loopback-only namespace (see namespaced)")
        from milvus import MilvusServer

        self.server = MilvusServer(wait_for_started=True)
        self.server.show_startup_banner = False
        self.server.set_base_dir(str(self.folder))
        for component in COMPONENTS:
            self.server.config.set(f"{component}.ip", "127.0.0.1")
        for key, value in self.settings.items():
            self.server.config.set(key, value)
        self.server.start()
        # The package chooses its ports afresh at each start, and would move a restarted server to the next free
        # port while the old one lingers: pinned, a restart comes back where its clients (and etcd) expect it.
        config = self.server.config
        config.configs.update({key: value[1] for key, value in config.configurable_items.items()
                               if key.endswith("_port")})
        self.spec = f"milvus://127.0.0.1:{self.server.listen_port}/fashion"
        return self

    def restart(self, grace: float = 60) -> None:
        """Stop the server as an operator does (SIGTERM, then wait for it: the package's own stop kills it after
        1 s, before it has left etcd), and start it again on its data and ports."""
        pid = self.server.server_proc.pid
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.server.stop()  # reaps it (or kills it, past the grace) and closes its log files
        # Its ports linger in TIME_WAIT for up to a minute, and the package binds them without SO_REUSEADDR.
        ports = [int(port) for key, port in self.server.config.configs.items() if key.endswith("_port")]
        while not all(free(port) for port in ports) and time.monotonic() < deadline + 120:
            time.sleep(1)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
