"""The local review of one snapshot: every engine that runs on this machine, without waiting
for anything remote. Pure: snapshot in, findings out."""

from __future__ import annotations

import attrs

from lsp_server.analysis.fingerprint import fingerprint_findings
from lsp_server.review import ruff_engine
from lsp_server.review.findings import Finding, Snapshot


@attrs.frozen
class LocalReview:
    findings: tuple[Finding, ...] = ()
    skipped: str | None = None
    """Why the document was not reviewed at all (too large, binary)."""
    problem: str | None = None
    """An engine that could not run (no ruff): the review is degraded, not failed."""


def skip_reason(snapshot: Snapshot) -> str | None:
    limit = snapshot.settings.max_file_size
    if len(snapshot.text) > limit:  # characters >= bytes / 4: a cheap first test
        size = len(snapshot.text.encode("utf-8", "surrogatepass"))
        if size > limit:
            return f"larger than max_file_size_kb ({size // 1024} KiB > {limit // 1024} KiB)"
    if "\x00" in snapshot.text:
        return "it looks binary (it contains NUL characters)"
    return None


def review(snapshot: Snapshot) -> LocalReview:
    if (reason := skip_reason(snapshot)) is not None:
        return LocalReview(skipped=reason)
    if snapshot.language != "python" or not snapshot.settings.ruff.enabled:
        return LocalReview()
    try:
        raw = ruff_engine.check(snapshot)
    except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed) as exc:
        return LocalReview(problem=str(exc))
    return LocalReview(findings=tuple(fingerprint_findings(raw, snapshot.text, snapshot.language)))
