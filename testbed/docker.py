"""The Docker daemon for the deploy suite, and the Dockerfile's base image where none can be pulled: a stand-in of
the same tag made from Debian's packages (debootstrap), with pip and python on the PATH like the official image."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BASE = "python:3.11-slim-bookworm"  # deploy/Dockerfile's PYTHON_IMAGE
# Debian's pip refuses to install beside its own packages unless told; the official image has no such rule.
STANDIN_ENV = "PIP_BREAK_SYSTEM_PACKAGES=1"


def docker(*arguments: str, timeout: float = 600, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """docker ARGUMENTS; the classic builder where BuildKit's buildx plugin is missing (the Dockerfile needs none
    of BuildKit's features)."""
    environ = {**os.environ, **env}
    if arguments[0] == "build" and subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode:
        environ["DOCKER_BUILDKIT"] = "0"
    return subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=timeout, check=check,
                          env=environ)


def daemon_running() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, timeout=30).returncode == 0


def ensure_base(tag: str = BASE) -> str:
    """tag, as it is here, pulled, or made: 'present', 'pulled' or 'stand-in'."""
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return "present"
    try:
        if docker("pull", tag, check=False, timeout=60).returncode == 0:
            return "pulled"
    except subprocess.TimeoutExpired:
        pass
    make_standin(tag)
    return "stand-in"


def make_standin(tag: str) -> None:
    """Debian bookworm (Python 3.11, like the tag) with python, pip and this machine's CA certificates, so that
    pip in a build reaches the package registry as this machine does."""
    with tempfile.TemporaryDirectory(prefix="standin-") as folder:
        root = Path(folder) / "root"
        subprocess.run(["debootstrap", "--variant=minbase",
                        "--include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates",
                        "bookworm", str(root)], check=True, capture_output=True, timeout=900)
        # What the official slim image leaves out as well: package caches, documentation, translations.
        for leftover in ("var/cache/apt/archives", "usr/share/doc", "usr/share/man", "usr/share/locale"):
            shutil.rmtree(root / leftover, ignore_errors=True)
        shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-c", f"ENV {STANDIN_ENV}", "-", tag], stdin=tar.stdout, check=True,
                       capture_output=True, timeout=600)
        tar.wait()


def build(target: str, tag: str, repository: Path) -> None:
    """deploy/Dockerfile's target, as README's command builds it, with the host's network for pip."""
    docker("build", "--network", "host", "-f", "deploy/Dockerfile", "--target", target, "-t", tag,
           str(repository), timeout=1200)


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", tag, "--format", "{{.Size}}").stdout)


def health_status(container: str) -> str:
    return docker("inspect", container, "--format", "{{.State.Health.Status}}", check=False).stdout.strip()
