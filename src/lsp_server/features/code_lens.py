""" "Generate tests" above each public function, method and class of a Python document.

Cheap by design: a parse of the document in the review pool, nothing run; the lens carries
its command, so no resolve is needed.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.contract.commands import GenerateTestsArgs
from lsp_server.contract.converter import unstructure
from lsp_server.session import Session
from lsp_server.testgen.targets import Symbol, lensed_symbols

TITLE = "Generate tests"
COMMAND = "gantry.generateTests"


def _symbols(text: str) -> tuple[Symbol, ...]:
    try:
        return lensed_symbols(text)
    except (SyntaxError, ValueError):  # mid-edit: no lenses until it parses again
        return ()


def register(server: LanguageServer, session: Session) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    async def code_lens(
        ls: LanguageServer, params: types.CodeLensParams
    ) -> list[types.CodeLens] | None:
        snapshot = session.snapshot(params.text_document.uri)
        if snapshot is None or snapshot.language != "python":
            return None
        symbols = await session.executors.review.run(_symbols, snapshot.text)
        lenses = []
        for symbol in symbols:
            line = symbol.line - 1
            start = types.Position(line=line, character=0)
            args = GenerateTestsArgs(snapshot.uri, symbol=symbol.name)
            lenses.append(
                types.CodeLens(
                    range=types.Range(start=start, end=start),
                    command=types.Command(
                        title=TITLE, command=COMMAND, arguments=[unstructure(args)]
                    ),
                )
            )
        return lenses
