"""A Milvus Lite server on loopback (`milvus-lite server`): one catalogue that several processes share."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbed.postgres import free_port


class MilvusLiteServer:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="fashion-milvus-"))
        self.port = free_port()
        self.spec = f"milvus://127.0.0.1:{self.port}/fashion"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> MilvusLiteServer:
        command = [str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir", str(self.folder),
                   "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("milvus-lite server did not start") from None
                time.sleep(0.2)

    def restart(self) -> None:
        """Stop the server and start it again on its data, on the same port."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(30)
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)
