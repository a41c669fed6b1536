"""The installed package's version: `fashion-index --version`, `fashion-bot --version` and the bot's build_info."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("fashion-recommender")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
