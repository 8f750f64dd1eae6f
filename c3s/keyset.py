"""Keyset (cursor) pages of a list read: the rows after a key, in key order, instead of an offset
the database must count past. A page costs the same at the end of a 150,000-seat map as at its
start, and rows inserted behind the cursor while a client pages do not shift the rest."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Text, cast, func, literal, select, true, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Page:
    """The rows of one page and the key of its last row when more rows follow (else None)."""

    rows: list[Row]
    next_key: tuple | None


class JsonText(str):
    """Text that is JSON already (a page the database built), to be put into a body as it is."""


@dataclass(frozen=True)
class JsonPage:
    """One page as a JSON array of objects, one per row, and the key of its last row when more
    rows follow (else None)."""

    items: JsonText
    next_key: tuple | None


def _past(statement: Select, keys: Sequence[Any], after: Sequence | None, descending: bool) -> Select:
    if after is None:
        return statement
    left = keys[0] if len(keys) == 1 else tuple_(*keys)
    right = after[0] if len(keys) == 1 else tuple_(*after)
    return statement.where(left < right if descending else left > right)


def _order(keys: Sequence[Any], descending: bool) -> list:
    return [key.desc() if descending else key for key in keys]


def keyset_page(session: Session, statement: Select, keys: Sequence[Any], *, after: Sequence | None,
                limit: int, descending: bool = False,
                key_of: Callable[[Row], tuple] | None = None) -> Page:
    """Run `statement` ordered by `keys` (columns that together are unique), from the first row
    past `after` (a previous page's `next_key`; None: the first page), at most `limit` rows.

    `key_of` gives a row's key; by default the `keys` columns read from the row, so they must be
    selected."""
    statement = _past(statement, keys, after, descending)
    rows = session.execute(statement.order_by(*_order(keys, descending)).limit(limit + 1)).all()
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    return Page(rows, tuple(key_of(last) if key_of else (last._mapping[key] for key in keys)))


def encode_cursor(list_name: str, key: Sequence) -> str:
    """An opaque `after` cursor for the row `key` of the list `list_name` (URL-safe base64 of JSON)."""
    text = json.dumps([list_name, *key], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, list_name: str, types: Sequence[type]) -> tuple:
    """The key an `encode_cursor(list_name, ...)` cursor holds, of `types`; ValueError saying
    what is wrong for anything else (garbage, another list's cursor, a key of the wrong shape)."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this API gave out: pass the `next` link of the previous page "
                         "unchanged, or leave `after` out for the first page") from None
    if not isinstance(decoded, list) or not decoded or decoded[0] != list_name:
        raise ValueError(f"not a cursor of this list ({list_name}): follow this list's own `next` link")
    key = tuple(decoded[1:])
    if len(key) != len(types) or not all(type(v) is t for v, t in zip(key, types, strict=True)):
        raise ValueError(f"a damaged cursor of this list ({list_name}): follow the `next` link unchanged")
    return key


def keyset_json_page(session: Session, statement: Select, keys: Sequence[Any], *, after: Sequence | None,
                     limit: int, descending: bool = False) -> JsonPage:
    """:func:`keyset_page` of a select of plain columns (`keys` among them), the page as a JSON
    array of objects named by the columns' keys.

    On PostgreSQL the database writes the JSON: the API process receives one string per page
    instead of building a Python object per row and per value, which would hold the interpreter
    lock against every other request of the process (the clock's among them) for tens of ms a
    page. Elsewhere (the embedded SQLite) the rows are read and encoded here."""
    if session.get_bind().dialect.name != "postgresql":
        page = keyset_page(session, statement, keys, after=after, limit=limit, descending=descending)
        return JsonPage(JsonText(json.dumps([dict(row._mapping) for row in page.rows], separators=(",", ":"))),
                        page.next_key)
    order = _order(keys, descending)
    number = func.row_number().over(order_by=order).label("page_row")
    rows = _past(statement, keys, after, descending).add_columns(number).order_by(*order).limit(limit + 1).subquery()
    # Each row as a record of the selected columns alone, so that row_to_json names them (and
    # writes no spaces, unlike json_build_object).
    item = select(*(rows.c[column.key] for column in statement.selected_columns)).correlate(rows).lateral("item")
    items = func.string_agg(cast(func.row_to_json(item.table_valued()), Text),
                            aggregate_order_by(literal(","), rows.c.page_row))
    last_key = func.max(cast(func.json_build_array(*(rows.c[key.key] for key in keys)), Text))
    text, fetched, last = session.execute(
        select(items.filter(rows.c.page_row <= limit), func.count(), last_key.filter(rows.c.page_row == limit))
        .select_from(rows.join(item, true()))).one()
    return JsonPage(JsonText(f"[{text or ''}]"), tuple(json.loads(last)) if fetched > limit else None)
