"""The bot's settings: one frozen object read from the environment and `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from indexing.errors import FashionIndexError
from indexing.finder.finders import FINDERS
from indexing.store.milvus import parse_store


class ConfigError(Exception):
    """A setting is missing or invalid; the message says which and how to fix it."""


DEFAULT_API_URL = "https://api.telegram.org"


@dataclass(frozen=True)
class Settings:
    token: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    index_dir: Path = Path("index")
    top_k: int = 5
    allowed_user_ids: frozenset[int] = frozenset()
    admin_user_ids: frozenset[int] = frozenset()
    rate_limit_per_minute: int = 20
    mode: str = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str = field(default="", repr=False)
    health_listen: str = "127.0.0.1"
    health_port: int = 8080
    state_dir: Path = Path("state")
    log_level: str = "INFO"
    runtime: str = "auto"
    weights_path: str = ""
    max_pending: int = 32
    query_ttl_hours: int = 72
    retention_days: int = 90
    api_timeout: int = 30
    reload_seconds: int = 2
    state_url: str = field(default="", repr=False)  # may hold a password
    item_finder: str = "auto"
    people_models: Path | None = None  # MediaPipe's pose models; None: the user's cache folder
    index_store: str = ""  # where this machine reaches the Milvus that the index names (a URI), if elsewhere
    alerts_per_second: int = 25
    proxy: str = field(default="", repr=False)  # HTTPS_PROXY for the Bot API; may hold a password

    @property
    def store_uri(self) -> str | None:
        return parse_store(self.index_store)["uri"] if self.index_store else None

    @property
    def bot_url(self) -> str:
        return f"{self.api_url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.api_url}/file/bot"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range ({low}-{high})")
    return value


def _ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    raw = env.get(name, "").replace(";", ",")
    try:
        return frozenset(int(part) for part in raw.replace(" ", ",").split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a comma-separated list of numeric Telegram user ids") from None


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: choose one of {', '.join(choices)}")
    return value


def index_store(env: Mapping[str, str]) -> str:
    spec = env.get("INDEX_STORE", "").strip()
    if spec:
        try:
            parse_store(spec)
        except FashionIndexError as exc:
            raise ConfigError(f"INDEX_STORE: {exc}") from None
    return spec


def state_url(env: Mapping[str, str]) -> str:
    url = env.get("STATE_URL", "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("STATE_URL must be a postgresql:// URL (or empty for SQLite under STATE_DIR)")
    return url


def environment(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> dict[str, str]:
    """env_file's variables (if it exists) overridden by the process environment."""
    env: dict[str, str] = {}
    if env_file and Path(env_file).is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    return env


def health_url(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> str:
    """Where the running bot answers /healthz, as this machine reaches it (no token needed to ask)."""
    env = environment(environ, env_file)
    host = env.get("HEALTH_LISTEN", "").strip() or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{_int(env, 'HEALTH_PORT', 8080, 1, 65535)}/healthz"


def proxy(env: Mapping[str, str]) -> str:
    url = (env.get("HTTPS_PROXY") or env.get("https_proxy") or "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError("HTTPS_PROXY must be an http:// or https:// URL (the proxy the Bot API is reached through)")
    return url


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Settings from env_file (if present) overridden by the process environment."""
    env = environment(environ, env_file)

    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set: copy .env.example to .env and fill it in")
    mode = _choice(env, "MODE", "polling", ("polling", "webhook"))
    webhook_url = env.get("WEBHOOK_URL", "").strip()
    if mode == "webhook" and not webhook_url.startswith("https://"):
        raise ConfigError("MODE=webhook needs WEBHOOK_URL, the public https:// address Telegram will call")
    level = env.get("LOG_LEVEL", "INFO").strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL={level!r}: choose DEBUG, INFO, WARNING or ERROR")
    return Settings(
        token=token,
        api_url=(env.get("TELEGRAM_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/"),
        index_dir=Path(env.get("INDEX_DIR", "").strip() or "index"),
        top_k=_int(env, "TOP_K", 5, 2, 10),
        allowed_user_ids=_ids(env, "ALLOWED_USER_IDS"),
        admin_user_ids=_ids(env, "ADMIN_USER_IDS"),
        rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 20, 0, 10_000),
        mode=mode,
        webhook_url=webhook_url,
        webhook_listen=env.get("WEBHOOK_LISTEN", "").strip() or "127.0.0.1",
        webhook_port=_int(env, "WEBHOOK_PORT", 8443, 1, 65535),
        webhook_secret=env.get("WEBHOOK_SECRET", "").strip(),
        health_listen=env.get("HEALTH_LISTEN", "").strip() or "127.0.0.1",
        health_port=_int(env, "HEALTH_PORT", 8080, 1, 65535),
        state_dir=Path(env.get("STATE_DIR", "").strip() or "state"),
        log_level=level,
        runtime=_choice(env, "EXTRACTOR_RUNTIME", "auto", ("auto", "onnxruntime", "tensorflow", "onnxruntime-int8")),
        weights_path=env.get("WEIGHTS_PATH", "").strip(),
        max_pending=_int(env, "MAX_PENDING", 32, 1, 10_000),
        query_ttl_hours=_int(env, "QUERY_TTL_HOURS", 72, 1, 24 * 365),
        retention_days=_int(env, "RETENTION_DAYS", 90, 1, 3650),
        api_timeout=_int(env, "API_TIMEOUT", 30, 1, 600),
        reload_seconds=_int(env, "INDEX_RELOAD_SECONDS", 2, 0, 3600),
        state_url=state_url(env),
        index_store=index_store(env),
        item_finder=_choice(env, "ITEM_FINDER", "auto", FINDERS),
        alerts_per_second=_int(env, "ALERTS_PER_SECOND", 25, 1, 30),
        people_models=Path(env["PEOPLE_MODELS"].strip()).expanduser() if env.get("PEOPLE_MODELS", "").strip() else None,
        proxy=proxy(env),
    )
