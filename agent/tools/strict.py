"""``strict: true`` function tools: the model's arguments must match the JSON schema, else the model is
told why and asked again (a model mistake, never sent to the client)."""

from __future__ import annotations

import json
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def violation(schema: dict[str, Any] | None, arguments: str) -> str | None:
    """Why ``arguments`` (JSON text) does not match ``schema``, or None when it does."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return "the arguments are not valid JSON"
    return _check(schema or {"type": "object"}, value, "arguments")


def _check(schema: dict[str, Any], value: Any, where: str) -> str | None:
    kinds = schema.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else list(kinds)
        ok = any(
            isinstance(value, _TYPES.get(k, (object,)))
            and not (k in ("integer", "number") and isinstance(value, bool))
            for k in allowed
        )
        if not ok:
            return f"{where} must be of type {' or '.join(map(str, allowed))}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {schema['enum']}"
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                return f"{where} is missing the required property '{name}'"
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in props]
            if extra:
                return f"{where} has properties the schema does not allow: {', '.join(extra)}"
        for name, sub in props.items():
            if name in value and isinstance(sub, dict):
                found = _check(sub, value[name], f"{where}.{name}")
                if found:
                    return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, entry in enumerate(value):
            found = _check(schema["items"], entry, f"{where}[{i}]")
            if found:
                return found
    return None
