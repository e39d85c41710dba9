"""Workspace folders: each has its own settings, store, verdicts, indexer and remote side.

A document belongs to the innermost folder that contains it. A file outside every folder belongs
to `Folders.outside`: the user's and the editor's settings only, and no store (its dismissals
last until the server stops).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from pygls.uris import to_fs_path
from pygls.workspace import Workspace

from lsp_server.analysis.languages import language_for_document
from lsp_server.config import Settings
from lsp_server.review.findings import Snapshot

if TYPE_CHECKING:
    from lsp_server.store import Store


class FolderIndexer(Protocol):
    """What a folder needs of its indexer (services/indexing.py)."""

    def start(self) -> None: ...
    async def stop(self, timeout: float = ...) -> bool: ...
    def halt(self, timeout: float = ...) -> bool: ...
    def saved(self, path: Path) -> None: ...
    async def index_paths(self, paths: list[Path]) -> None: ...


class FolderRemote(Protocol):
    """What a folder needs of its remote side (services/remote.py)."""

    dispatcher: Any
    """The folder's remote_exec.aio.AsyncDispatcher, once started."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def settled(self) -> Any: ...
    async def queue_status(self) -> dict[str, Any]: ...
    async def retry(self, job_id: int | None) -> dict[str, Any]: ...


@attrs.define(eq=False)
class Folder:
    uri: str | None
    """The folder's URI as the client named it; None for files outside every folder."""
    root: Path | None
    settings: Settings = attrs.field(factory=Settings)
    withheld_notice: str | None = None
    """What the folder's settings may not set, last said to the user (said once)."""
    store: Store | None = None
    dismissed: frozenset[str] = frozenset()
    started: bool = False
    """Its start has begun (a folder announced before `initialized` is started once)."""
    configured: asyncio.Event = attrs.field(factory=asyncio.Event)
    """Set once settings are loaded: reviews may run."""
    ready: asyncio.Event = attrs.field(factory=asyncio.Event)
    """Set once verdicts are loaded too: reviews publish only then."""
    indexer: FolderIndexer | None = None
    remote: FolderRemote | None = None

    @property
    def name(self) -> str:
        return self.root.name if self.root is not None else "(no folder)"

    def contains(self, path: Path) -> bool:
        return self.root is not None and path.is_relative_to(self.root)


def folder_root(uri: str) -> Path:
    return Path(to_fs_path(uri) or uri)


class Folders:
    def __init__(self) -> None:
        self._by_uri: dict[str, Folder] = {}
        self.outside = Folder(uri=None, root=None)

    def __iter__(self) -> Iterator[Folder]:
        return iter(list(self._by_uri.values()))

    def __len__(self) -> int:
        return len(self._by_uri)

    def get(self, uri: str) -> Folder | None:
        return self._by_uri.get(uri)

    def add(self, folder: Folder) -> None:
        assert folder.uri is not None
        self._by_uri[folder.uri] = folder

    def remove(self, uri: str) -> Folder | None:
        return self._by_uri.pop(uri, None)

    def for_path(self, path: Path) -> Folder:
        """The innermost folder containing `path` (absolute), else `outside`."""
        inside = [f for f in self._by_uri.values() if f.contains(path)]
        return max(inside, key=lambda f: len(f.root.parts), default=self.outside)

    def for_uri(self, uri: str) -> Folder:
        path = to_fs_path(uri)
        return self.for_path(Path(path)) if path else self.outside

    def snapshot(self, workspace: Workspace, uri: str) -> Snapshot | None:
        """The document as it is now, with its folder's settings; None when it is not open."""
        document = workspace.text_documents.get(uri)
        if document is None:
            return None
        path = to_fs_path(uri) or uri
        return Snapshot(
            uri=uri,
            path=path,
            version=document.version,
            text=document.source,
            language=language_for_document(path, document.language_id),
            settings=self.for_uri(uri).settings,
        )

    @property
    def first(self) -> Folder | None:
        return next(iter(self._by_uri.values()), None)

    @property
    def starting(self) -> bool:
        return any(not f.ready.is_set() for f in (self.outside, *self._by_uri.values()))
