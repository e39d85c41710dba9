"""Hover over an AI finding: where it came from (model, endpoint, prompt version, cached or
fresh and when, the context the model was shown, tokens) and why the model thinks so.

Only AI findings get a hover. A ruff finding's rule, message and documentation link are already
in the editor's own diagnostic hover, and its fix in the light bulb: repeating them would show
everything twice (VS Code puts diagnostics and hovers in one popup).

The text is the model's, and the code it read may carry a prompt injection: every piece of it
is escaped, so it cannot render as a link, an image (which the editor would fetch) or HTML.
"""

from __future__ import annotations

import re

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.convert import lsp_range, source_of
from lsp_server.review.findings import Finding
from lsp_server.session import Session

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&:])")


def _key(position: types.Position) -> tuple[int, int]:
    return position.line, position.character


def _covers(span: types.Range, at: types.Position) -> bool:
    start, end, here = _key(span.start), _key(span.end), _key(at)
    return start <= here < end or start == end == here


def render(findings: list[Finding], markdown: bool) -> str:
    """The hover text for the AI findings under the cursor."""
    escape = (lambda s: _MARKDOWN_SPECIAL.sub(r"\\\1", s)) if markdown else (lambda s: s)
    bold = (lambda s: f"**{s}**") if markdown else (lambda s: s)
    blocks = []
    for finding in findings:
        p = finding.provenance
        message, _, rationale = finding.message.partition("\n\n")
        lines = [
            bold(f"{source_of(finding)} {escape(finding.rule)} ({finding.level})"),
            "",
            escape(message),
        ]
        if rationale:
            lines += ["", f"{bold('Why:')} {escape(rationale)}"]
        origin = "from the cache" if p.cached else "fresh"
        when = p.at.strftime("%Y-%m-%d %H:%M UTC") if p.at is not None else "at an unknown time"
        facts = [
            f"Model: {escape(p.model or 'unknown')} at endpoint {escape(p.endpoint or 'unknown')}",
            f"Prompt version: {escape(p.prompt_version or 'unknown')}",
            f"Answer: {origin}, answered {when}",
            "Context: "
            + (", ".join(escape(symbol) for symbol in p.context) if p.context else "none"),
            f"Tokens: {p.tokens if p.tokens is not None else 'unknown'}",
        ]
        if finding.fix is not None:
            facts.append("Fix: a checked fix is offered as a quick fix")
        # Markdown joins consecutive lines into one paragraph: a list keeps them apart.
        lines += ["", *(f"- {fact}" if markdown else fact for fact in facts)]
        blocks.append("\n".join(lines))
    return ("\n\n---\n\n" if markdown else "\n\n").join(blocks)


def register(server: LanguageServer, session: Session) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        shown = session.publisher.shown(uri)
        current = ls.workspace.text_documents.get(uri)
        if shown is None or current is None or current.version != shown.snapshot.version:
            return None  # positions of other text: fresh diagnostics are on their way
        codec, lines = ls.workspace.position_codec, shown.snapshot.lines
        under: list[tuple[types.Range, Finding]] = []
        for finding in shown.findings:
            if finding.provenance.engine == "ruff":
                continue
            span = lsp_range(codec, lines, finding.start, finding.end)
            if _covers(span, params.position):
                under.append((span, finding))
        if not under:
            return None
        markdown = session.caps.hover_markdown
        return types.Hover(
            contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown if markdown else types.MarkupKind.PlainText,
                value=render([finding for _, finding in under], markdown),
            ),
            range=under[0][0],
        )
