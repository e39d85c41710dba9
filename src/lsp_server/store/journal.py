"""The verdict journal: an append-only JSONL file beside the store.

It outlives the store file, so a corrupt or deleted store never costs the user their verdicts.
One line per change; for a fingerprint the last line wins; `{"removed": true}` undoes a verdict.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs

from lsp_server.store.records import Verdict


def journal_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".verdicts.jsonl")


class VerdictJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, verdict: Verdict) -> None:
        self._append(attrs.asdict(verdict))

    def record_removal(self, fingerprint: str) -> None:
        self._append({"fingerprint": fingerprint, "removed": True})

    def replay(self) -> dict[str, Verdict | None]:
        """fingerprint -> its last verdict, or None where the last line removed it."""
        state: dict[str, Verdict | None] = {}
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return state
        for line in lines:
            try:
                entry = json.loads(line)
                fingerprint = entry["fingerprint"]
                state[fingerprint] = None if entry.get("removed") else Verdict(**entry)
            except (ValueError, TypeError, KeyError):
                continue  # a torn last line after a crash, or a hand edit: skip it
        return state

    def _append(self, entry: dict[str, object]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        # Never through a symbolic link: the journal may sit in a repository, and a link there
        # would have us append to whatever file it names.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with open(fd, "a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())
