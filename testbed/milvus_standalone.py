"""A Milvus standalone server (the binary that the `milvus` package ships) for the tests.

Milvus 2.3 listens on every interface and has no setting to change that, so the tests run it only inside a
network namespace of its own (`unshare -rn`), where loopback is the only interface: see tests/test_stores.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
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
    """command, run in a network namespace of its own that has only loopback (brought up), with env set."""
    assigned = " ".join(f"{key}={shlex.quote(value)}" for key, value in {INSIDE: "1", **(env or {})}.items())
    return ["unshare", "-rn", "sh", "-c", f"ip link set lo up && {assigned} exec {shlex.join(command)}"]


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
        self.spec = f"milvus://127.0.0.1:{self.server.listen_port}/fashion"
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
