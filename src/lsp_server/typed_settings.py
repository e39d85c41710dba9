"""Lenient structuring of attrs settings classes from untrusted tables (TOML, editor JSON).

A bad value costs only its own field: it is reported as a sentence and its default is kept.
cattrs is not used here because it coerces too eagerly ("E" -> ["E"], "false" -> True).
"""

from __future__ import annotations

import contextlib
import re
import types
import typing
from typing import Any, Literal

import attrs

# Keys that would hold a secret: settings may be synced to a repository, secrets may not.
_SECRET_KEYS = frozenset({"api_key", "token", "password", "secret"})


def snake(key: str) -> str:
    """Editors speak camelCase (maxFileSizeKb), TOML speaks snake or kebab case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).replace("-", "_").lower()


def attrs_class(hint: Any) -> type | None:
    """The attrs class of `Cls` or `Cls | None`."""
    if attrs.has(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        classes = [a for a in typing.get_args(hint) if attrs.has(a)]
        return classes[0] if len(classes) == 1 else None
    return None


def _list_item_class(hint: Any) -> type | None:
    if typing.get_origin(hint) is list and attrs.has(typing.get_args(hint)[0]):
        return typing.get_args(hint)[0]
    return None


def fits(value: Any, hint: Any) -> bool:
    """Strict shape check of a plain (non-attrs) value."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            fits(k, args[0]) and fits(v, args[1]) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def normalise_keys(data: Any, cls: type) -> Any:
    """snake_case the keys of settings tables (not of free-form maps such as `severity`)."""
    if not isinstance(data, dict):
        return data
    hints = typing.get_type_hints(cls)
    out = {}
    for raw_key, value in data.items():
        key = snake(str(raw_key))
        hint = hints.get(key)
        if value is None or hint is None:
            out[key] = value
        elif (inner := attrs_class(hint)) is not None:
            out[key] = normalise_keys(value, inner)
        elif (item := _list_item_class(hint)) is not None and isinstance(value, list):
            out[key] = [normalise_keys(v, item) for v in value]
        else:
            out[key] = value
    return out


def structure(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    """Build `cls` from `data` field by field, appending a sentence per rejected value."""
    where_all = path or "gantry"
    if data == []:
        data = {}  # Lua (Neovim) cannot tell an empty table from an empty list
    if not isinstance(data, dict):
        problems.append(f"{where_all}: expected a table, got {data!r}; using defaults")
        return cls()
    fields = {f.name: f for f in attrs.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = snake(str(raw_key))
        where = f"{path}.{raw_key}" if path else str(raw_key)
        if key not in fields:
            if key in _SECRET_KEYS:
                problems.append(
                    f"{where}: secrets are never settings (settings travel with the repository); "
                    f"name an environment variable ({key}_env) or a file ({key}_file) instead"
                )
            else:
                problems.append(f"{where}: unknown setting, ignored")
            continue
        hint = hints[key]
        if value is None and fits(None, hint):
            values[key] = None
        elif (inner := attrs_class(hint)) is not None:
            with contextlib.suppress(ValueError):  # reported; the default stays
                values[key] = structure(inner, value, where, problems)
        elif (item := _list_item_class(hint)) is not None and isinstance(value, list):
            values[key] = _structure_items(item, value, where, problems)
        else:
            if not fits(value, hint):
                problems.append(f"{where}: invalid value {value!r}; using the default")
                continue
            try:
                if (validator := fields[key].validator) is not None:
                    validator(None, fields[key], value)
                values[key] = value
            except (TypeError, ValueError) as exc:
                # The validator's own words: it knows what is wrong, and what not to repeat
                # (a URL's password, for one).
                problems.append(f"{where}: {exc}; using the default")
    missing = [
        f.name for f in fields.values() if f.default is attrs.NOTHING and f.name not in values
    ]
    if missing:
        problems.append(f"{where_all}: missing {', '.join(missing)}; ignored")
        raise ValueError(missing)
    try:
        return cls(**values)
    except ValueError as exc:  # a check across fields, e.g. an endpoint's privacy and host
        problems.append(f"{where_all}: {exc}; ignored")
        raise


def _structure_items(item: type, values: list, where: str, problems: list[str]) -> list:
    out = []
    for index, value in enumerate(values):
        with contextlib.suppress(ValueError):  # reported; the other items still count
            out.append(structure(item, value, f"{where}[{index}]", problems))
    return out
