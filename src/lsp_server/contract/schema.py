"""JSON Schemas (2020-12) of the contract, generated from its attrs classes into `schemas/`.

    python -m lsp_server.contract.schema    # rewrite them after changing a class

Written here rather than taken from a library: none that is maintained reads attrs classes
(apischema needs a conversion per class and is unmaintained; pydantic reads dataclasses, not
attrs), and the schemas must follow the converter's own rules: camelCase keys, and `required`
for exactly the fields without a default. The types used are few (attrs classes, str, int,
float, bool, None, Literal, unions, list, tuple[X, ...], dict[str, X], datetime), and so is the
schema vocabulary, which the TypeScript and Lua tests' small validators implement.
"""

from __future__ import annotations

import datetime
import json
import types
import typing
from pathlib import Path
from typing import Any

import attrs

from lsp_server.contract.commands import COMMANDS
from lsp_server.contract.converter import camel, unstructure
from lsp_server.contract.data import DiagnosticData
from lsp_server.contract.status import Status

SCHEMAS_DIR = Path(__file__).parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_PRIMITIVES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


class _Schemas:
    """One schema document: its root object and the `$defs` of the classes it refers to."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of(self, type_: Any) -> dict[str, Any]:
        if type_ in _PRIMITIVES:
            return {"type": _PRIMITIVES[type_]}
        if type_ is datetime.datetime:
            return {"type": "string", "format": "date-time"}
        if attrs.has(type_):
            name = type_.__name__
            if name not in self.defs:
                self.defs[name] = {}  # a class that refers to itself finds its name taken
                self.defs[name] = self.object(type_)
            return {"$ref": f"#/$defs/{name}"}
        origin, args = typing.get_origin(type_), typing.get_args(type_)
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (typing.Union, types.UnionType):
            options = [self.of(arg) for arg in args]
            if all(set(option) == {"type"} for option in options):
                return {"type": [option["type"] for option in options]}
            return {"anyOf": options}
        if origin in (list, tuple):
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(args[1])}
        raise TypeError(f"no JSON Schema for {type_!r}")

    def object(self, cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        properties, required = {}, []
        for field in attrs.fields(cls):
            schema = self.of(hints[field.name])
            if field.default is attrs.NOTHING:
                required.append(camel(field.name))
            elif not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                schema["default"] = unstructure(field.default)
            properties[camel(field.name)] = schema
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        return schema


def document(title: str, root: Any) -> dict[str, Any]:
    """A self-contained schema of `root`, a type or a schema fragment builder."""
    schemas = _Schemas()
    body = root(schemas) if callable(root) and not isinstance(root, type) else schemas.of(root)
    out = {"$schema": DIALECT, "title": title, **body}
    if schemas.defs:
        out["$defs"] = dict(sorted(schemas.defs.items()))
    return out


def _arguments(cls: type) -> Any:
    """A command's `arguments`: a list of its one object, which may be left out when every
    field has a default."""
    required = any(field.default is attrs.NOTHING for field in attrs.fields(cls))

    def build(schemas: _Schemas) -> dict[str, Any]:
        return {
            "type": "array",
            "items": schemas.of(cls),
            "minItems": int(required),
            "maxItems": 1,
        }

    return build


def generate() -> dict[str, dict[str, Any]]:
    """Every schema by its path under `schemas/`."""
    out = {
        "diagnostic-data.json": document("Diagnostic.data", DiagnosticData),
        "status.json": document("gantry/status", Status),
    }
    for command, cls in COMMANDS.items():
        out[f"commands/{command}.json"] = document(f"{command} arguments", _arguments(cls))
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main() -> None:
    for name, schema in generate().items():
        path = SCHEMAS_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
