"""Where the command's settings come from, and the options that carry them.

Highest first: a command-line option, its environment variable (typer reads both:
``--model`` / ``DEEPMEMORY_MODEL``), the config file, then a default:

==========  ==========================================  ==============  =======================
setting     option / variable                           config.toml     default
==========  ==========================================  ==============  =======================
database    ``--db`` / DEEPMEMORY_DB                    ``db``          ``<data dir>/memory.db``
user        ``--user`` / DEEPMEMORY_USER                ``user``        the OS user name
model       ``--model`` / DEEPMEMORY_MODEL              ``model``       by API key (Anthropic,
                                                                        OpenAI)
base URL    ``--base-url`` / DEEPMEMORY_BASE_URL        ``base_url``    the provider's own
TTL (days)  ``--ttl-days`` / DEEPMEMORY_TTL_DAYS        ``ttl_days``    none: nothing expires
file cap    ``--max-files`` / DEEPMEMORY_MAX_FILES      ``max_files``   none
byte cap    ``--max-bytes`` / DEEPMEMORY_MAX_BYTES      ``max_bytes``   none
==========  ==========================================  ==============  =======================

The last three make the user's :class:`~deepmemory.pruning.PrunePolicy`
(``Settings.policy``): memory not used (written or read) for ``ttl_days`` is hidden
from ``deepmemory memory`` and the agent, and ``deepmemory memory prune`` (and a
``chat`` session, in the background) deletes it and evicts the least recently used
files over ``max_files`` / ``max_bytes``. Only ``memory prune`` has the options; the
variables apply to every command. In the config file they are TOML numbers
(``ttl_days = 90``, ``max_files = 500``), the other settings strings.

The config file is ``$DEEPMEMORY_CONFIG``, else ``$XDG_CONFIG_HOME/deepmemory/config.toml``,
else ``~/.config/deepmemory/config.toml``; the data dir is ``$XDG_DATA_HOME/deepmemory``,
else ``~/.local/share/deepmemory``. A ``--db`` starting with ``postgresql://`` selects
PostgreSQL (its ``schema=NAME`` parameter, the schema); anything else is a SQLite file.

``deepmemory mcp --http`` accepts bearer tokens, each serving one user's memory. Its
``--token`` (DEEPMEMORY_MCP_TOKEN) serves ``--user``; the config file's ``[mcp.tokens]``
table maps more tokens to their users (keep the file private: it holds secrets)::

    [mcp.tokens]
    "kq3V8c1...a long random token..." = "alice"
    "Zr0TfQw...another one..." = "bob"

Tokens are at least ``MIN_TOKEN_CHARS`` printable ASCII characters without spaces
(``python -c "import secrets; print(secrets.token_urlsafe(32))"`` makes one); users
follow ``--user``'s rules. Messages about a token never show it.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deepmemory.errors import ConfigError

if TYPE_CHECKING:  # imported where used: the agent stack costs a second at start-up
    from langchain_core.language_models import BaseChatModel

    from deepmemory.pruning import PrunePolicy

CONFIG_ENV = "DEEPMEMORY_CONFIG"
STRING_KEYS = ("model", "base_url", "db", "user", "embed")
# The embedding model for recall by meaning (``embed = "openai:text-embedding-3-small"``)
# and its vector size; environment variables win over the config file.
EMBED_ENV, EMBED_DIMS_ENV = "DEEPMEMORY_EMBED", "DEEPMEMORY_EMBED_DIMS"
# The settings of the prune policy: config key -> (option, environment variable).
PRUNE_KEYS = {
    "ttl_days": ("--ttl-days", "DEEPMEMORY_TTL_DAYS"),
    "max_files": ("--max-files", "DEEPMEMORY_MAX_FILES"),
    "max_bytes": ("--max-bytes", "DEEPMEMORY_MAX_BYTES"),
}
MCP_KEY = "mcp"  # the [mcp] table; its only key is "tokens" (token -> user)
CONFIG_KEYS = (*STRING_KEYS, "embed_dims", *PRUNE_KEYS, MCP_KEY)
MIN_TOKEN_CHARS = 16
MEMORY_PREFIX = "memories"  # memory of user U lives in namespace ("memories", U)
_UNSAFE_IN_USER = set("./\\*?%[]{} ")
_MAX_DAYS = timedelta.max.days

# -- the options every command shares -------------------------------------------------

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        envvar="DEEPMEMORY_USER",
        help="Whose memory: namespace ('memories', USER). Default: config 'user', else the OS user.",
        show_default=False,
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="DEEPMEMORY_DB",
        help="SQLite file or postgresql:// URL (?schema=NAME picks the schema). "
        "Default: config 'db', else "
        "$XDG_DATA_HOME/deepmemory/memory.db (~/.local/share/deepmemory/memory.db).",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="DEEPMEMORY_MODEL",
        help="Chat model as PROVIDER:NAME (openai:gpt-4.1, anthropic:claude-sonnet-4-5, "
        "ollama:llama3.1). Default: config 'model', else by the API key that is set.",
        show_default=False,
    ),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="DEEPMEMORY_BASE_URL",
        help="Endpoint of an OpenAI-compatible (or other) server for the model. Default: "
        "config 'base_url', else the provider's (OPENAI_BASE_URL for OpenAI).",
        show_default=False,
    ),
]
ThreadOption = Annotated[
    str | None,
    typer.Option(
        "--thread",
        "-t",
        envvar="DEEPMEMORY_THREAD",
        help="Conversation to resume (see `deepmemory threads ls`). Default: a new one.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]
TtlDaysOption = Annotated[
    float | None,
    typer.Option(
        "--ttl-days",
        envvar="DEEPMEMORY_TTL_DAYS",
        help="Forget files not used (written or read) for this many days, e.g. 90 or 0.5. "
        "Default: config 'ttl_days', else none.",
        show_default=False,
    ),
]
MaxFilesOption = Annotated[
    int | None,
    typer.Option(
        "--max-files",
        envvar="DEEPMEMORY_MAX_FILES",
        help="Keep at most this many files per user, evicting the least recently used. "
        "Default: config 'max_files', else no cap.",
        show_default=False,
    ),
]
MaxBytesOption = Annotated[
    int | None,
    typer.Option(
        "--max-bytes",
        envvar="DEEPMEMORY_MAX_BYTES",
        help="Keep at most this many bytes per user, evicting the least recently used "
        "files. Default: config 'max_bytes', else no cap.",
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class Settings:
    """What one command runs against."""

    db: str
    user: str
    model: str | None
    base_url: str | None
    # What the user's memory forgets; empty: nothing.
    policy: PrunePolicy = field(default_factory=lambda: _policy())
    embed: str | None = None  # the embedding model ("provider:model"); None: no recall
    embed_dims: int | None = None

    @property
    def index(self) -> dict[str, Any] | None:
        """The stores' ``index=`` for recall by meaning; ``None`` without an embedder.

        Raises:
            ConfigError: an embedder is named without its vector size, or cannot be made.
        """
        if not self.embed:
            return None
        if self.embed_dims is None:
            raise ConfigError(
                f"The embedder {self.embed!r} needs its vector size: set embed_dims "
                f"(for example 1536 for openai:text-embedding-3-small) in {config_path()} "
                f"or {EMBED_DIMS_ENV}."
            )
        return {"dims": self.embed_dims, "embed": embeddings(self.embed, self.base_url)}

    @property
    def namespace(self) -> tuple[str, str]:
        """The store namespace of this user's memory."""
        return (MEMORY_PREFIX, self.user)


def config_path() -> Path:
    """The config file's location (it need not exist)."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "deepmemory" / "config.toml"


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The config file's settings; ``{}`` when there is no file.

    Values are checked: the keys of ``STRING_KEYS`` hold strings, ``ttl_days`` a
    number > 0, ``max_files`` and ``max_bytes`` whole numbers >= 0, ``[mcp.tokens]``
    tokens mapped to users (see :func:`mcp_tokens`).

    Raises:
        ConfigError: the file is not valid TOML, or holds an unknown key or a bad value.
    """
    path = path or config_path()
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read the config file {str(path)!r}: {exc}.") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"Unknown setting {unknown[0]!r} in {str(path)!r}; the settings are "
            f"{', '.join(CONFIG_KEYS)}."
        )
    for key, value in data.items():
        if key in PRUNE_KEYS:
            _PRUNE_CHECKS[key](value, f"{key!r} in {str(path)!r}")
        elif key == MCP_KEY:
            _check_mcp(value, path)
        elif key == "embed_dims":
            _dims(value, f"'embed_dims' in {str(path)!r}")
        elif not isinstance(value, str):
            raise ConfigError(f"{key!r} in {str(path)!r} must be a string, got {value!r}.")
    return data


def check_token(token: str, source: str) -> str:
    """``token`` if it can be a bearer token; ``source`` names where it was set.

    Raises:
        ConfigError: it is shorter than ``MIN_TOKEN_CHARS`` or holds a character other
            than printable ASCII; the message does not repeat the token.
    """
    if len(token) < MIN_TOKEN_CHARS or not (token.isascii() and token.isprintable()):
        raise ConfigError(
            f"A token of {source} must be at least {MIN_TOKEN_CHARS} printable ASCII "
            'characters without spaces; make one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(32))"'
        )
    if " " in token:
        raise ConfigError(f"A token of {source} contains a space; tokens have none.")
    return token


def _check_mcp(value: object, path: Path) -> None:
    """Check the ``[mcp]`` table: only ``tokens``, a table of token = "user"."""
    where = f"[mcp.tokens] in {str(path)!r}"
    if not isinstance(value, dict) or set(value) - {"tokens"}:
        raise ConfigError(
            f'[mcp] in {str(path)!r} may only hold the table [mcp.tokens] (token = "user").'
        )
    tokens = value.get("tokens", {})
    if not isinstance(tokens, dict):
        raise ConfigError(f'{where} must be a table of "token" = "user" lines.')
    for token, user in tokens.items():
        check_token(token, where)
        if not isinstance(user, str):
            raise ConfigError(f"A token of {where} maps to {user!r}, not to a user name.")
        try:
            check_user(user)
        except ConfigError:
            raise ConfigError(
                f"A token of {where} maps to the invalid user {user!r}: use letters, digits, "
                "'-', '_', ':' or '@'."
            ) from None


def mcp_tokens(config: dict[str, Any]) -> dict[str, str]:
    """The bearer tokens of ``deepmemory mcp --http`` in a checked config: token -> user."""
    return dict(config.get(MCP_KEY, {}).get("tokens", {}))


def _dims(value: object, source: str) -> int:
    """``value`` as an embedding size; ``source`` names where it was set."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ConfigError(f"{source} must be the embedding size, a whole number >= 1, not {value!r}.")


def embeddings(name: str, base_url: str | None = None) -> Any:
    """The LangChain embedder ``name`` ("provider:model") names.

    OpenAI's is asked to send texts as they are (passages and queries are short), so it
    needs no tokenizer download, and goes to ``base_url`` when one is set.

    Raises:
        ConfigError: the name is not "provider:model", or the provider's package is missing.
    """
    from langchain.embeddings import init_embeddings

    provider = name.split(":", 1)[0]
    options: dict[str, Any] = {}
    if provider == "openai":
        options["check_embedding_ctx_length"] = False
        if base_url:
            options["base_url"] = base_url
    try:
        return init_embeddings(name, **options)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"Cannot use the embedder {name!r} (embed / {EMBED_ENV}): {exc}"
        ) from None


def _days(value: object, source: str) -> float:
    """``value`` as a TTL in days; ``source`` names where it was set, for the message."""
    # NaN, inf and anything beyond timedelta's range fail the comparison too.
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= _MAX_DAYS:
        return float(value)
    raise ConfigError(f"{source} must be a number of days > 0, such as 30 or 0.5, not {value!r}.")


def _count(value: object, source: str) -> int:
    """``value`` as a cap (files or bytes); ``source`` names where it was set."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"{source} must be a whole number >= 0, not {value!r}.")


_PRUNE_CHECKS = {"ttl_days": _days, "max_files": _count, "max_bytes": _count}


def _number(text: str) -> int | float | str:
    """An environment variable's text as a number, or the text if it is none."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def _prune_setting(
    key: str, given: float | None, config: dict[str, Any], path: Path
) -> tuple[object, str] | None:
    """The value of prune setting ``key`` and where it came from, or ``None`` if unset.

    Highest first: the option (``given``), its environment variable (read here too, so
    that commands without the option honour it), the config file.
    """
    option, envvar = PRUNE_KEYS[key]
    if given is not None:
        return given, f"{option} (or {envvar})"
    text = os.environ.get(envvar, "").strip()
    if text:
        return _number(text), envvar
    if key in config:
        return config[key], f"{key!r} in {str(path)!r}"
    return None


def _policy(**limits: Any) -> PrunePolicy:
    from deepmemory.pruning import PrunePolicy

    return PrunePolicy(**limits)


def prune_policy(
    config: dict[str, Any],
    path: Path,
    *,
    ttl_days: float | None = None,
    max_files: int | None = None,
    max_bytes: int | None = None,
) -> PrunePolicy:
    """The prune policy the options, variables and config file (at ``path``) set.

    Raises:
        ConfigError: a value is not a number of days > 0 or a whole number >= 0.
    """
    ttl = _prune_setting("ttl_days", ttl_days, config, path)
    files = _prune_setting("max_files", max_files, config, path)
    size = _prune_setting("max_bytes", max_bytes, config, path)
    return _policy(
        ttl=None if ttl is None else timedelta(days=_days(*ttl)),
        max_files=None if files is None else _count(*files),
        max_bytes=None if size is None else _count(*size),
    )


def data_dir() -> Path:
    """Where the default database lives."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "deepmemory"


def default_user() -> str:
    """The OS user name, made safe for a namespace (``john.doe`` -> ``john_doe``)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password database
        name = "default"
    return "".join("_" if c in _UNSAFE_IN_USER or ord(c) < 0x20 else c for c in name) or "default"


def check_user(user: str) -> str:
    """``user`` if it can name a memory namespace.

    Raises:
        ConfigError: it is empty or holds a character that could widen the namespace.
    """
    from deepmemory.backends.store import validate_namespace

    try:
        validate_namespace((MEMORY_PREFIX, user))
    except ConfigError:
        raise ConfigError(
            f"Invalid user {user!r} (--user / DEEPMEMORY_USER): use letters, digits, "
            "'-', '_', ':' or '@', not . / \\ * ? % [ ] { } or control characters."
        ) from None
    return user


def resolve(
    *,
    db: str | None,
    user: str | None,
    model: str | None = None,
    base_url: str | None = None,
    ttl_days: float | None = None,
    max_files: int | None = None,
    max_bytes: int | None = None,
) -> Settings:
    """Fill what the options left unset from the config file and the defaults."""
    path = config_path()
    config = read_config(path)
    return Settings(
        db=db or config.get("db") or str(data_dir() / "memory.db"),
        user=check_user(user or config.get("user") or default_user()),
        model=model or config.get("model"),
        base_url=base_url or config.get("base_url"),
        policy=prune_policy(
            config, path, ttl_days=ttl_days, max_files=max_files, max_bytes=max_bytes
        ),
        embed=os.environ.get(EMBED_ENV, "").strip() or config.get("embed"),
        embed_dims=_embed_dims(config, path),
    )


def _embed_dims(config: dict[str, Any], path: Path) -> int | None:
    text = os.environ.get(EMBED_DIMS_ENV, "").strip()
    if text:
        return _dims(_number(text), EMBED_DIMS_ENV)
    value = config.get("embed_dims")
    return None if value is None else _dims(value, f"'embed_dims' in {str(path)!r}")


def model_name(settings: Settings) -> str:
    """The model the command will use.

    Raises:
        ConfigError: none is configured and no provider's API key is set.
    """
    from deepmemory.agent import DEFAULT_MODELS

    name = settings.model or next(
        (m for key, m in DEFAULT_MODELS.items() if os.environ.get(key)), None
    )
    if not name:
        raise ConfigError(
            "No model configured: pass --model openai:gpt-4.1 (or anthropic:..., ollama:...), "
            f'set DEEPMEMORY_MODEL, put model = "..." in {config_path()}, or set '
            "OPENAI_API_KEY or ANTHROPIC_API_KEY."
        )
    return name


def chat_model(settings: Settings) -> BaseChatModel:
    """The chat model of ``settings``, pointed at ``base_url`` when one is set.

    Raises:
        ConfigError: no model is configured, its package is missing, or it cannot be
            created (for example its API key is not set).
    """
    from deepmemory.agent import resolve_model

    name = model_name(settings)
    if not settings.base_url:
        return resolve_model(name)
    return resolve_model(name, base_url=settings.base_url)
