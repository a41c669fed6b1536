"""A throwaway PostgreSQL server from Debian's package, on loopback, for the tests of the shared state."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "fashion"


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    """A loopback port nobody listens on (the tests' servers and bots bind to it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Postgres:
    """initdb into a temporary folder, then pg_ctl start on 127.0.0.1 (as the postgres user when root)."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="fashion-pg-"))
        self.port = free_port()
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> Postgres:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        data = self.folder / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "--no-sync")
        self.up()
        return self

    def up(self) -> None:
        """Start the server on its data and port (after `down`)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "log"), "-w",
                  "start", "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off")

    def down(self) -> None:
        """Stop the server as a crash would (immediate), keeping its data: `up` starts it again on its port."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        self.down()
        self.up()

    def stop(self) -> None:
        self.down()
        shutil.rmtree(self.folder, ignore_errors=True)
