"""workspace/didChangeWatchedFiles: files changed on disk (branch switches, tools). Settings
files reload their folder's settings; sources are re-indexed; a changed .gitignore re-indexes
the whole folder."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server.services.folders import Folder
from lsp_server.session import Session

_SETTINGS_FILES = frozenset({"pyproject.toml", "gantry.toml"})


def register(server: LanguageServer, session: Session) -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(
        ls: LanguageServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        by_folder: dict[Folder, list[Path]] = {}
        for change in params.changes:
            path = Path(to_fs_path(change.uri) or change.uri)
            by_folder.setdefault(session.folders.for_path(path), []).append(path)
        for folder, paths in by_folder.items():
            if any(p.name in _SETTINGS_FILES for p in paths):
                await session.folder_service.reload(folder)
                session.reviewer.request_all(folder)
            if folder.indexer is None:
                continue
            if any(p.name == ".gitignore" for p in paths):
                folder.indexer.start()  # what is ignored changed: walk everything again
            else:
                await folder.indexer.index_paths(
                    [p for p in paths if p.name not in _SETTINGS_FILES]
                )
