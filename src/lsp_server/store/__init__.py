"""The SQLite context store. It stores data and knows nothing of parsing or of LSP."""

from lsp_server.store.db import NotAStoreError
from lsp_server.store.records import (
    VERDICT_KINDS,
    CachedReview,
    ContentRecord,
    FileRecord,
    FileState,
    SymbolHit,
    SymbolRecord,
    SymbolUses,
    TestgenRun,
    Verdict,
    VerdictKind,
)
from lsp_server.store.schema import NewerSchemaError
from lsp_server.store.store import Store, VerdictNotStored

__all__ = [
    "VERDICT_KINDS",
    "CachedReview",
    "ContentRecord",
    "FileRecord",
    "FileState",
    "NewerSchemaError",
    "NotAStoreError",
    "Store",
    "SymbolHit",
    "SymbolRecord",
    "SymbolUses",
    "TestgenRun",
    "Verdict",
    "VerdictKind",
    "VerdictNotStored",
]
