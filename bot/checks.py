"""What `fashion-bot --check` verifies, and every start verifies first: everything local, before any heavy work."""

from __future__ import annotations

import errno
import importlib.util
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from indexing.errors import FashionIndexError

# Exit codes (README, "Deploy"): systemd's RestartPreventExitStatus and the operator read them.
CONFIGURATION = 2  # the operator must change something: a setting, the token, the index, a model, a permission
TRANSIENT = 1  # may pass by itself: a server unreachable, a full disk, Telegram down
# What @BotFather gives: the bot's numeric id, a colon, then 35 letters, digits, - or _.
TOKEN_FORMAT = re.compile(r"\d{3,}:[A-Za-z0-9_-]{30,}")


@dataclass
class CheckFailed(Exception):
    """One check failed: what, and the fix, in one line; the exit code it calls for."""

    message: str
    code: int = CONFIGURATION

    def __str__(self) -> str:
        return self.message


def token(settings: Settings) -> str:
    if not TOKEN_FORMAT.fullmatch(settings.token):
        raise CheckFailed("TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then 35 letters, "
                          "digits, - or _): copy it again from @BotFather")
    return "token: well-formed"


def readable(path: Path, what: str) -> None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except PermissionError:
        raise CheckFailed(f"{what} {path} cannot be read by user {user()}: make the index readable to it "
                          "(chmod -R a+rX on the index folder, or build it under a umask of 022)") from None
    except FileNotFoundError:
        raise CheckFailed(f"{what} {path} is missing: build the index again with `fashion-index build`") from None


def index(settings: Settings) -> str:
    from indexing.store.files import MANIFEST, named_files, read_manifest

    if (settings.index_dir / MANIFEST).exists():
        readable(settings.index_dir / MANIFEST, "the index's manifest")
    try:
        manifest = read_manifest(settings.index_dir)
    except FashionIndexError as exc:
        raise CheckFailed(f"INDEX_DIR: {exc}") from None
    for name in sorted(named_files(manifest)):
        readable(settings.index_dir / name, "the index file")
    exported = "extractor" in manifest["files"]
    if settings.runtime in ("onnxruntime", "onnxruntime-int8") and not exported:
        raise CheckFailed("EXTRACTOR_RUNTIME=onnxruntime, but the index has no ONNX export: run "
                          "`fashion-index export --index INDEX_DIR`")
    if not exported and importlib.util.find_spec("tensorflow") is None:
        raise CheckFailed("the index has no ONNX export and TensorFlow is not installed here: run "
                          "`fashion-index export --index INDEX_DIR` where TensorFlow is")
    return f"index: {manifest['count']} photos in {settings.index_dir}" + ("" if exported else ", no ONNX export")


def models(settings: Settings) -> str:
    if settings.item_finder != "auto":
        return f"pose models: not needed (ITEM_FINDER={settings.item_finder})"
    from indexing.finder.people_models import check_models, models_dir

    folder = settings.people_models or models_dir()
    try:
        check_models(folder)
    except FashionIndexError as exc:
        raise CheckFailed(f"PEOPLE_MODELS: {exc}") from None
    except PermissionError:
        raise CheckFailed(f"PEOPLE_MODELS: {folder} cannot be read by user {user()}: make it readable") from None
    return f"pose models: {folder}"


def state(settings: Settings) -> str:
    if settings.state_url:
        return "state: PostgreSQL (reached at start)"
    folder = settings.state_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".check-"):
            pass
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise CheckFailed(f"STATE_DIR {folder}: the disk is full", TRANSIENT) from None
        reason = {errno.EROFS: "on a read-only disk", errno.EACCES: f"not writable by user {user()}",
                  errno.ENOTDIR: "not a folder"}.get(exc.errno, exc.strerror)
        raise CheckFailed(f"STATE_DIR {folder} is {reason}: point STATE_DIR at a folder this user may write"
                          ) from None
    return f"state: {folder}"


def translations(settings: Settings) -> str:
    from bot.i18n import LANGUAGES, check_catalogues

    try:
        check_catalogues()
    except FashionIndexError as exc:
        raise CheckFailed(str(exc)) from None
    return f"translations: {len(LANGUAGES)} languages"


def user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


LOCAL: tuple[Callable[[Settings], str], ...] = (token, index, models, state, translations)


def run_local(settings: Settings) -> list[str]:
    """Every local check, in order; the first that fails raises CheckFailed."""
    return [check(settings) for check in LOCAL]


def start_failure(error: FashionIndexError) -> CheckFailed:
    """A library error that stopped the start, with its exit code: the operator's to fix, or maybe passing."""
    from bot.i18n import CatalogueMissingError
    from indexing.errors import ExtractorMismatchError, IndexFormatError, WeightsError
    from indexing.finder.people_models import PeopleModelsError

    fixable = (CatalogueMissingError, ExtractorMismatchError, IndexFormatError, PeopleModelsError, WeightsError)
    return CheckFailed(f"cannot start: {error}", CONFIGURATION if isinstance(error, fixable) else TRANSIENT)


def telegram(settings: Settings) -> str:
    """getMe: whether Telegram (through TELEGRAM_API_URL and HTTPS_PROXY) accepts the token."""
    import asyncio

    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError
    from telegram.request import HTTPXRequest

    async def ask() -> str:
        request = HTTPXRequest(connect_timeout=10, read_timeout=settings.api_timeout, proxy=settings.proxy or None)
        async with Bot(settings.token, base_url=settings.bot_url, request=request) as bot:
            return f"@{bot.username}"

    try:
        return f"Telegram: the token is accepted, this is {asyncio.run(ask())}"
    except (InvalidToken, NetworkError) as exc:
        raise telegram_failure(settings, exc) from None


def telegram_failure(settings: Settings, error: Exception) -> CheckFailed:
    """Telegram refused the token (the operator's to fix), or could not be reached (may pass)."""
    from telegram.error import InvalidToken

    if isinstance(error, InvalidToken):
        return CheckFailed("Telegram rejected TELEGRAM_BOT_TOKEN (revoked or mistyped): copy it again from @BotFather")
    return CheckFailed(f"cannot reach Telegram at {settings.api_url}: {error} (check the network, TELEGRAM_API_URL "
                       "or HTTPS_PROXY)", TRANSIENT)
