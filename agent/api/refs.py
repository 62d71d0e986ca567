"""Ownership of every id a request body names, checked in one place before anything is written.

Request models type their id fields as :data:`FileId`, :data:`VectorStoreId` or :data:`AssistantId`
(bare, optional or in lists, at any depth). :func:`check_refs` walks a validated body, collects every such
id with the path of its field, and looks them up for the caller's key in one query per kind. An id that
is unknown, owned by another key or expired gets the same 404 (the hosted API's words), so a key learns
nothing about another key's objects. ``common.parse`` calls it for every body it parses.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel

from agent.errors import NotFound, not_found
from agent.store import Store


@dataclass(frozen=True)
class Ref:
    """Marks a string field as the id of an object of ``kind`` (a store kind) that must be the caller's."""

    kind: str
    label: str


FileId = Annotated[str, Ref("file", "file")]
VectorStoreId = Annotated[str, Ref("vector_store", "vector store")]
AssistantId = Annotated[str, Ref("assistant", "assistant")]
EXPIRING = ("file", "vector_store")  # kinds with ``expires_at``: past it, the object is gone


def expired(obj: dict[str, Any], at: int) -> bool:
    """Whether a file or vector store has passed its ``expires_at`` (it is then gone, as hosted)."""
    until = obj.get("expires_at")
    return isinstance(until, int) and until <= at


def _find_ref(annotation: Any) -> Ref | None:
    """The Ref inside ``FileId``, ``FileId | None``, ``list[FileId] | None`` and the like."""
    if typing.get_origin(annotation) is Annotated:
        found = next((m for m in annotation.__metadata__ if isinstance(m, Ref)), None)
        return found or _find_ref(typing.get_args(annotation)[0])
    for arg in typing.get_args(annotation):
        if isinstance(arg, type | types.GenericAlias | types.UnionType) or typing.get_origin(arg):
            found = _find_ref(arg)
            if found is not None:
                return found
    return None


@functools.cache
def _field_refs(model: type[BaseModel]) -> dict[str, Ref | None]:
    out: dict[str, Ref | None] = {}
    for name, info in model.model_fields.items():
        ref = next((m for m in info.metadata if isinstance(m, Ref)), None)
        out[name] = ref or _find_ref(info.annotation)
    return out


def refs(value: Any, path: str = "") -> Iterator[tuple[Ref, str, str]]:
    """Every (ref, id, param path) named in a validated request body, in field order."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from refs(item, f"{path}[{i}]")
        return
    if not isinstance(value, BaseModel):
        return
    for name, ref in _field_refs(type(value)).items():
        item = getattr(value, name)
        where = f"{path}.{name}" if path else name
        if ref is not None and isinstance(item, str):
            yield ref, item, where
        elif ref is not None and isinstance(item, list):
            yield from ((ref, v, f"{where}[{i}]") for i, v in enumerate(item) if isinstance(v, str))
        elif isinstance(item, BaseModel | list):
            yield from refs(item, where)


async def check_refs(store: Store, owner: str, body: BaseModel, at: int) -> None:
    """Raise the hosted 404 for the first id in ``body`` that is not the caller's (or has expired)."""
    named = list(refs(body))
    if not named:
        return
    found: dict[str, set[str]] = {}
    for kind in {ref.kind for ref, _, _ in named}:
        ids = list({i for ref, i, _ in named if ref.kind == kind})
        objs = await store.owned(kind, owner, ids)
        found[kind] = {
            i for i, obj in objs.items() if not (kind in EXPIRING and obj is not None and expired(obj, at))
        }
    for ref, object_id, where in named:
        if object_id not in found[ref.kind]:
            err = not_found(ref.label, object_id)
            raise NotFound(err.message, param=where)
