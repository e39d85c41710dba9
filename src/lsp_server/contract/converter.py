"""The one converter for the contract's payloads.

Keys are camelCase, as in LSP. A field at its default is left out; a field without a default is
always written, so what the schemas call required is what is always there. Reading is as strict
as the schemas: a string is not an int, `"false"` is not True, a string is not a list of
characters; anything else fails with one readable message (`ContractError`). Unknown keys are
ignored, so a newer peer may add some.
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs import cols
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

T = TypeVar("T")


class ContractError(ValueError):
    """A payload that is not what its class says."""


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _renames(cls: type) -> dict[str, Any]:
    return {
        field.name: override(rename=camel(field.name))
        for field in attrs.fields(cls)
        if camel(field.name) != field.name
    }


def _exactly(kind: type) -> Any:
    def structure(value: Any, _: Any) -> Any:
        # bool is an int to Python, not to JSON; an int is a valid JSON number.
        if type(value) is kind or (kind is float and type(value) is int):
            return value
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")

    return structure


def _is_array(type_: Any) -> bool:
    return get_origin(type_) in (list, tuple)


def _array_factory(type_: Any, converter: cattrs.Converter) -> Any:
    build = (
        cols.list_structure_factory
        if get_origin(type_) is list
        else cols.homogenous_tuple_structure_factory
    )
    items = build(type_, converter)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return items(value, type_)

    return structure


def _make(detailed_validation: bool) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=detailed_validation)
    for kind in (str, int, float, bool):
        converter.register_structure_hook(kind, _exactly(kind))
    converter.register_structure_hook_factory(
        _is_array, functools.partial(_array_factory, converter=converter)
    )
    converter.register_unstructure_hook(datetime.datetime, datetime.datetime.isoformat)
    converter.register_structure_hook(
        datetime.datetime, lambda value, _: datetime.datetime.fromisoformat(value)
    )
    converter.register_unstructure_hook_factory(
        attrs.has,
        lambda cls: make_dict_unstructure_fn(
            cls, converter, _cattrs_omit_if_default=True, **_renames(cls)
        ),
    )
    converter.register_structure_hook_factory(
        attrs.has, lambda cls: make_dict_structure_fn(cls, converter, **_renames(cls))
    )
    return converter


CONVERTER = _make(detailed_validation=True)
_QUIET = _make(detailed_validation=False)
"""The same rules, without the bookkeeping that says where a value went wrong: a third faster,
for reading thousands of diagnostics' data in `gantry check`."""


def _interned(cls: type, converter: cattrs.Converter) -> Any:
    build = make_dict_structure_fn(cls, converter, **_renames(cls))

    @functools.lru_cache(maxsize=256)
    def cached(items: tuple) -> Any:
        return build(dict(items), cls)

    def structure(value: Any, _: Any) -> Any:
        try:
            return cached(tuple(value.items()))
        except (TypeError, AttributeError):  # not a dict, or a list in it: not hashable
            return build(value, cls)

    return structure


def intern(cls: type) -> None:
    """Read `cls`, a frozen class whose values repeat across thousands of payloads (every
    finding of a review shares its provenance), once per distinct value."""
    for converter in (CONVERTER, _QUIET):
        converter.register_structure_hook(cls, _interned(cls, converter))


def _say(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, ContractError):  # a class's own check of its fields, which it names
        return str(exc)
    if get_origin(type_) is Literal:
        return "expected one of " + ", ".join(json.dumps(value) for value in get_args(type_))
    return format_exception(exc, type_)


def unstructure(value: Any) -> Any:
    return CONVERTER.unstructure(value)


def structure(value: Any, cls: type[T], *, explain: bool = True) -> T:
    """`value` (decoded JSON) as a `cls`; ContractError, saying where and why (only why without
    `explain`), if it is not one."""
    try:
        return (CONVERTER if explain else _QUIET).structure(value, cls)
    except cattrs.BaseValidationError as exc:
        raise ContractError("; ".join(cattrs.transform_error(exc, format_exception=_say))) from exc
    except (cattrs.errors.CattrsError, TypeError, ValueError, KeyError) as exc:
        raise ContractError(f"invalid {cls.__name__}: {exc}") from exc
