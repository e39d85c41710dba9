"""What the client can do, resolved once at initialize into a small record."""

from __future__ import annotations

import attrs
from lsprotocol import types


def _get(obj, *path, default=None):
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return default
    return obj


@attrs.frozen
class ClientCaps:
    code_action_literals: bool = True
    resolve_edits: bool = False
    """codeAction/resolve may fill in `edit` lazily."""
    document_changes: bool = False
    """WorkspaceEdit.documentChanges (versioned edits) instead of `changes`."""
    work_done_progress: bool = False
    configuration: bool = False
    watched_files_registration: bool = False
    apply_edit: bool = False
    create_files: bool = False
    """A WorkspaceEdit may create files (resourceOperations has "create")."""
    show_document: bool = False
    hover_markdown: bool = False
    """Hover content may be Markdown: the client lists it first among its formats (the
    order is its preference)."""

    @classmethod
    def from_lsp(cls, caps: types.ClientCapabilities | None) -> ClientCaps:
        if caps is None:
            return cls()
        resolve = _get(caps, "text_document", "code_action", "resolve_support", "properties")
        return cls(
            code_action_literals=_get(
                caps, "text_document", "code_action", "code_action_literal_support"
            )
            is not None,
            resolve_edits="edit" in (resolve or []),
            document_changes=bool(
                _get(caps, "workspace", "workspace_edit", "document_changes", default=False)
            ),
            work_done_progress=bool(_get(caps, "window", "work_done_progress", default=False)),
            configuration=bool(_get(caps, "workspace", "configuration", default=False)),
            watched_files_registration=bool(
                _get(
                    caps,
                    "workspace",
                    "did_change_watched_files",
                    "dynamic_registration",
                    default=False,
                )
            ),
            apply_edit=bool(_get(caps, "workspace", "apply_edit", default=False)),
            create_files=types.ResourceOperationKind.Create
            in (_get(caps, "workspace", "workspace_edit", "resource_operations") or ()),
            show_document=bool(_get(caps, "window", "show_document", "support", default=False)),
            hover_markdown=_first_format(caps) == types.MarkupKind.Markdown,
        )


def _first_format(caps: types.ClientCapabilities) -> types.MarkupKind | None:
    formats = _get(caps, "text_document", "hover", "content_format") or ()
    return next((f for f in formats if f in tuple(types.MarkupKind)), None)
