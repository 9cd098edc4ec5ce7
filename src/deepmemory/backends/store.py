"""StoreBackend: files in a LangGraph ``BaseStore``, shared by every thread.

One store item per file, in one namespace, keyed by the file's path relative to the
backend's mount, with the value layout of :class:`~deepmemory.backends.protocol.StoredFile`.

Two ways to answer a query:

* the store implements :class:`SupportsFileQueries` (our ``SQLiteStore`` and
  ``PostgresStore``): listing, glob and grep run in the database and edits are
  compare-and-swap on a version column;
* any other ``BaseStore`` (``InMemoryStore``, langgraph's ``SqliteStore`` and
  ``PostgresStore``): ``_GenericStoreFiles`` reads the namespace in one ``search``
  pass (never ``OFFSET`` paging) and keeps only items of exactly this namespace.

The namespace is fixed (``namespace=("users", "alice")``) or computed per run from the
runtime (``namespace=lambda rt: ("users", rt.context.user_id)``). A store that keeps
history (``SupportsHistory``) is told the run's thread, user and assistant with each
change (``StoreBackend._author``).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.store.base import BaseStore, GetOp, Item, PutOp, SearchOp

from deepmemory import clock, errors, paths
from deepmemory.backends import _scan
from deepmemory.backends._base import Call, Op, run_async, run_sync
from deepmemory.backends._files import FileOpsBackend
from deepmemory.backends._text import file_from_value, stored_size
from deepmemory.backends.protocol import (
    Author,
    Expiry,
    FileInfo,
    FileUsage,
    GrepMatch,
    Namespace,
    StoredFile,
    SupportsExpiry,
    SupportsFileQueries,
    implements,
)
from deepmemory.errors import ConfigError
from deepmemory.pruning import PrunePolicy, PruneReport, aprune_namespace, prune_namespace

DEFAULT_NAMESPACE: Namespace = ("filesystem",)
NamespaceSpec = Namespace | Sequence[str] | Callable[[Any], Sequence[str]]

# Characters that would widen a namespace when matched as a prefix or pattern.
_NAMESPACE_FORBIDDEN = set("./\\*?%[]{}")
# One search call returns the whole namespace; a limit this large is "no limit".
_SCAN_LIMIT = 2**62


def validate_namespace(namespace: Sequence[str]) -> Namespace:
    r"""Check a namespace and return it as a tuple.

    Raises:
        ConfigError: if a component is empty, not a string, or holds a character
            that could widen it (``. / \\ * ? % [ ] { }`` or a control character).
    """
    ns = tuple(namespace)
    if not ns:
        raise ConfigError("A StoreBackend namespace needs at least one component.")
    for part in ns:
        if not isinstance(part, str) or not part:
            raise ConfigError(f"Namespace components must be non-empty strings, got {part!r}.")
        bad = {c for c in part if c in _NAMESPACE_FORBIDDEN or ord(c) < 0x20 or c == "\x7f"}
        if bad:
            raise ConfigError(
                f"Namespace component {part!r} contains {''.join(sorted(bad))!r}, which could "
                "widen the namespace to other tenants' files. Use letters, digits, '-', '_' "
                "or ':' (for example a user id)."
            )
    if ns[0] == "langgraph":
        raise ConfigError("Namespaces may not start with 'langgraph' (reserved by LangGraph).")
    return ns


def _lookup(runtime: Any, key: str) -> Any:
    """``key`` from the run's context (attribute or mapping), else from its config."""
    context = getattr(runtime, "context", None)
    value = context.get(key) if isinstance(context, dict) else getattr(context, key, None)
    if value is None:
        config = getattr(runtime, "config", None) or {}
        value = (config.get("configurable") or {}).get(key)
    return value


def tenant_namespace(
    *, user: str | None = "user_id", assistant: str | None = None, prefix: str = "memories"
) -> Callable[[Any], Namespace]:
    """A ``namespace=`` callable scoping memory per user and/or per assistant.

    The ids are read from the run's context (``rt.context.user_id``, or a dict key) or
    from ``config["configurable"]``. A missing id is an error, never a shared default,
    and ids that could widen the namespace are refused.

    Example:
        >>> ns = tenant_namespace(user="user_id", assistant="assistant_id")
        >>> backend = StoreBackend(namespace=ns)   # ("memories", "<assistant>", "<user>")
    """
    keys = [k for k in (assistant, user) if k]
    if not keys:
        raise ConfigError("tenant_namespace needs user= and/or assistant= to scope by.")

    def namespace(runtime: Any) -> Namespace:
        parts = [prefix]
        for key in keys:
            value = _lookup(runtime, key)
            if value is None or value == "":
                raise ConfigError(
                    f"Memory is scoped by {key!r}, but this run has none: pass it in the "
                    f"run's context (context=...{key}=...) or config['configurable'][{key!r}]."
                )
            parts.append(str(value))
        return validate_namespace(parts)

    return namespace


class _BatchIO:
    """``batch``/``abatch`` of a store; sync-only stores run in a worker thread."""

    def __init__(self, store: BaseStore) -> None:
        self.store = store

    def batch(self, ops: list[Any]) -> list[Any]:
        return list(self.store.batch(ops))

    async def abatch(self, ops: list[Any]) -> list[Any]:
        try:
            return list(await self.store.abatch(ops))
        except NotImplementedError:
            # langgraph's sync SqliteStore raises here; do the blocking call off the loop.
            return await asyncio.to_thread(self.batch, ops)


def _twins(make: Callable[..., Op[Any]]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A sync and an async method from one generator body."""

    def sync(self: _GenericStoreFiles, *args: Any, **kwargs: Any) -> Any:
        return run_sync(make(self, *args, **kwargs), self.io)

    async def asynchronous(self: _GenericStoreFiles, *args: Any, **kwargs: Any) -> Any:
        return await run_async(make(self, *args, **kwargs), self.io)

    return sync, asynchronous


def _file(item: Item | None) -> StoredFile | None:
    return None if item is None else file_from_value(item.value)


def _last_write(file: StoredFile) -> datetime | None:
    """When the file was last written, from its ``modified_at``; None if it has none."""
    try:
        moment = datetime.fromisoformat(file.modified_at)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _last_write_iso(file: StoredFile) -> str:
    """``_last_write`` in the stores' ISO form (sorts as text); '' if unknown."""
    moment = _last_write(file)
    return "" if moment is None else clock.iso(moment)


class _GenericStoreFiles:
    """The file queries over plain ``BaseStore`` operations.

    With an expiry (``with_expiry``) files last written before its cut-off are left
    out; a plain store cannot record reads, so here a file's last use is its last
    write (``modified_at``; a file without one never expires). A store with LangGraph's
    TTL support (``supports_ttl``) is also given the TTL with each write, so its own
    sweeper removes what has expired.
    """

    expiry: Expiry | None = None

    def __init__(self, store: BaseStore) -> None:
        self.io = _BatchIO(store)

    def with_expiry(self, expiry: Expiry) -> _GenericStoreFiles:
        """This repository leaving out files not written within ``expiry.ttl``."""
        view = copy.copy(self)
        view.expiry = expiry
        return view

    def _visible(self, file: StoredFile) -> bool:
        ttl = None if self.expiry is None else self.expiry.ttl
        if ttl is None:
            return True
        written = _last_write(file)
        return written is None or written >= clock.now() - ttl

    def _ttl_minutes(self) -> float | None:
        """The TTL to hand a store that supports LangGraph's TTL, in its minutes."""
        ttl = None if self.expiry is None else self.expiry.ttl
        if ttl is None or not getattr(self.io.store, "supports_ttl", False):
            return None
        return ttl.total_seconds() / 60

    def _put_op(self, ns: Namespace, key: str, file: StoredFile) -> PutOp:
        # index=False: files are not embedded into a vector index on every write.
        return PutOp(ns, key, file.to_value(), False, self._ttl_minutes())

    @staticmethod
    def _scan_all(ns: Namespace) -> Op[list[tuple[str, StoredFile]]]:
        # One pass over the namespace; search matches by prefix, so keep exact matches only.
        (items,) = yield Call("batch", ([SearchOp(ns, None, _SCAN_LIMIT, 0, None, False)],))
        return [(item.key, file_from_value(item.value)) for item in items if item.namespace == ns]

    def _scan(self, ns: Namespace) -> Op[list[tuple[str, StoredFile]]]:
        files = yield from self._scan_all(ns)
        return [(key, file) for key, file in files if self._visible(file)]

    def _get(self, ns: Namespace, key: str) -> Op[StoredFile | None]:
        (item,) = yield Call("batch", ([GetOp(ns, key, False)],))
        file = _file(item)
        return file if file is not None and self._visible(file) else None

    def _usage(self, ns: Namespace) -> Op[list[FileUsage]]:
        files = yield from self._scan_all(ns)
        return [
            FileUsage(key, stored_size(file), _last_write_iso(file))
            for key, file in sorted(files)
            if key.startswith("/")
        ]

    def _discard(
        self, ns: Namespace, victims: Sequence[FileUsage], *, author: Author | None = None
    ) -> Op[list[str]]:
        if not victims:
            return []
        # No versions here: delete only files whose modified_at is still the one listed.
        current = yield Call("batch", ([GetOp(ns, v.key, False) for v in victims],))
        gone = [
            v.key
            for v, item in zip(victims, current, strict=True)
            if item is not None and _last_write_iso(file_from_value(item.value)) == v.last_used
        ]
        if gone:
            yield Call("batch", ([PutOp(ns, key, None) for key in gone],))
        return gone

    def _put(
        self, ns: Namespace, key: str, file: StoredFile, *, expected_version: int | None
    ) -> Op[int | None]:
        if expected_version is None:
            old = yield from self._get(ns, key)
            if old is not None and old.created_at:
                file.created_at = old.created_at
        yield Call("batch", ([self._put_op(ns, key, file)],))
        return 0

    def _put_many(self, ns: Namespace, files: list[tuple[str, StoredFile]]) -> Op[None]:
        if not files:
            return
        # Two round trips for any number of files: read creation times, then write.
        olds = yield Call("batch", ([GetOp(ns, key, False) for key, _ in files],))
        for (_, file), old in zip(files, olds, strict=True):
            if old is not None and old.value.get("created_at"):
                file.created_at = str(old.value["created_at"])
        yield Call("batch", ([self._put_op(ns, key, file) for key, file in files],))

    def _list_dir(self, ns: Namespace, dir_key: str) -> Op[list[FileInfo]]:
        return _scan.list_dir((yield from self._scan(ns)), dir_key)

    def _is_dir(self, ns: Namespace, dir_key: str) -> Op[bool]:
        return _scan.is_dir((k for k, _ in (yield from self._scan(ns))), dir_key)

    def _glob(
        self, ns: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> Op[list[FileInfo]]:
        return _scan.glob((yield from self._scan(ns)), dir_key, regex, rel_prefix)

    def _grep(
        self,
        ns: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> Op[list[GrepMatch]]:
        items = yield from self._scan(ns)
        return _scan.grep(items, dir_key, literal, glob_regex, rel_prefix)

    def _delete_tree(self, ns: Namespace, key: str) -> Op[list[str]]:
        keys = _scan.tree_keys([k for k, _ in (yield from self._scan(ns))], key)
        if keys:
            yield Call("batch", ([PutOp(ns, k, None) for k in keys],))
        return keys

    file_get, afile_get = _twins(_get)
    file_put, afile_put = _twins(_put)
    file_put_many, afile_put_many = _twins(_put_many)
    file_list_dir, afile_list_dir = _twins(_list_dir)
    file_is_dir, afile_is_dir = _twins(_is_dir)
    file_glob, afile_glob = _twins(_glob)
    file_grep, afile_grep = _twins(_grep)
    file_delete_tree, afile_delete_tree = _twins(_delete_tree)
    file_usage, afile_usage = _twins(_usage)
    file_discard, afile_discard = _twins(_discard)


class StoreBackend(FileOpsBackend):
    """Files in a LangGraph store: persistent, shared by every thread.

    Example:
        >>> from langgraph.store.memory import InMemoryStore
        >>> backend = StoreBackend(store=InMemoryStore(), namespace=("users", "alice"))
        >>> backend.write("/prefs.txt", "dark mode").error is None
        True
    """

    def __init__(
        self,
        runtime: Any = None,
        *,
        store: BaseStore | None = None,
        namespace: NamespaceSpec | None = None,
        ttl: timedelta | None = None,
        prune: PrunePolicy | None = None,
    ) -> None:
        """Files of ``namespace`` in ``store`` (else the run's store).

        ``ttl`` (or ``prune=PrunePolicy(...)``, which also caps files and bytes): files
        not used for that long are gone from every tool at once, and ``prune()``
        deletes them (see :mod:`deepmemory.pruning`).
        """
        self.runtime = runtime
        self.store = store
        if namespace is not None and not callable(namespace):
            namespace = validate_namespace(namespace)
        self.namespace = namespace
        if ttl is not None and prune is not None:
            raise ConfigError("Give ttl= or prune=PrunePolicy(ttl=...), not both.")
        self.policy = prune if prune is not None else PrunePolicy(ttl=ttl)

    def bind(self, runtime: Any) -> StoreBackend:
        """A backend for one tool call: the run's store unless one was given."""
        bound = self.mounted(self.mount)
        bound.runtime = runtime
        return bound

    @property
    def _dir_check_is_cheap(self) -> bool:  # type: ignore[override]
        return implements(self._store(), SupportsFileQueries)

    def _store(self) -> BaseStore:
        store = self.store if self.store is not None else getattr(self.runtime, "store", None)
        if store is None:
            raise ConfigError(
                "StoreBackend has no store: pass store=... to create_deep_agent (for example "
                "deepmemory.stores.SQLiteStore('memory.db')), or StoreBackend(store=...)."
            )
        return store

    def resolve_namespace(self) -> Namespace:
        """The namespace of this run (a callable namespace is given the runtime)."""
        spec = self.namespace
        if spec is None:
            return DEFAULT_NAMESPACE
        if callable(spec):
            return validate_namespace(spec(self.runtime))
        return tuple(spec)

    def _author(self) -> Author | None:
        """Who makes this run's changes, or ``None`` outside a run.

        ``thread_id`` comes from the run's config; ``user_id`` and ``assistant_id`` from
        its context (attribute or key) or config, as ``tenant_namespace`` reads them.
        """
        if self.runtime is None:
            return None
        config = getattr(self.runtime, "config", None) or {}
        thread = (config.get("configurable") or {}).get("thread_id")
        user, assistant = _lookup(self.runtime, "user_id"), _lookup(self.runtime, "assistant_id")
        if thread is None and user is None and assistant is None:
            return None
        return Author(
            *(None if value is None else str(value) for value in (thread, user, assistant))
        )

    def _repo(self) -> tuple[Any, Namespace]:
        store = self._store()
        ns = self.resolve_namespace()
        repo: Any = store if implements(store, SupportsFileQueries) else _GenericStoreFiles(store)
        expiry = self.policy.expiry
        if expiry is not None:
            if not implements(repo, SupportsExpiry):
                raise ConfigError(
                    f"{type(store).__name__} answers file queries itself but does not "
                    "implement SupportsExpiry (with_expiry, file_usage, file_discard), so it "
                    "cannot hide expired files: give this StoreBackend no ttl/prune policy, "
                    "or use one of deepmemory.stores."
                )
            repo = repo.with_expiry(expiry)
        return repo, ns

    def _space_keys(self, file_paths: Sequence[str]) -> dict[str, str]:
        keys = {}
        for file_path in file_paths:
            try:
                vpath = paths.validate(file_path)
            except errors.InvalidPathError:
                continue  # the write itself will refuse it
            if self._serves(vpath):
                keys[self._key(vpath)] = vpath
        return keys

    def space_used(
        self, file_paths: Sequence[str], *, bound: int | None = None
    ) -> tuple[int, dict[str, int]] | None:
        """Bytes stored below the mount, and the sizes of ``file_paths`` that exist.

        A count the database keeps where the store can (``file_space``), else ``None``
        (the caller lists the files instead). For ``LimitsBackend``: the total may
        include expired files not yet pruned while it is at most ``bound``.
        """
        repo, ns = self._repo()
        if not hasattr(repo, "file_space"):
            return None
        keys = self._space_keys(file_paths)
        total, sizes = repo.file_space(ns, list(keys), bound=bound)
        return total, {keys[k]: size for k, size in sizes.items()}

    async def aspace_used(
        self, file_paths: Sequence[str], *, bound: int | None = None
    ) -> tuple[int, dict[str, int]] | None:
        """Async ``space_used``."""
        repo, ns = self._repo()
        if not hasattr(repo, "afile_space"):
            return None
        keys = self._space_keys(file_paths)
        total, sizes = await repo.afile_space(ns, list(keys), bound=bound)
        return total, {keys[k]: size for k, size in sizes.items()}

    def prune(self, *, dry_run: bool = False) -> PruneReport:
        """Delete what this backend's policy says has expired or is over its caps.

        Example:
            >>> from datetime import timedelta
            >>> from langgraph.store.memory import InMemoryStore
            >>> backend = StoreBackend(store=InMemoryStore(), ttl=timedelta(days=30))
            >>> backend.prune(dry_run=True).removed
            []
        """
        return prune_namespace(
            self._store(), self.resolve_namespace(), self.policy, dry_run=dry_run
        )

    async def aprune(self, *, dry_run: bool = False) -> PruneReport:
        """Async ``prune``."""
        return await aprune_namespace(
            self._store(), self.resolve_namespace(), self.policy, dry_run=dry_run
        )


def iter_namespace_files(
    store: BaseStore, namespace: Namespace
) -> Iterator[tuple[str, StoredFile]]:
    """Every file of exactly ``namespace`` in ``store``, in one pass (for export and tools)."""
    yield from run_sync(_GenericStoreFiles._scan_all(namespace), _BatchIO(store))
