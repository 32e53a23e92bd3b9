"""Rows decoded by column name (never by position)."""

from __future__ import annotations


def named_rows(cursor) -> list[dict]:
    """The fetched rows as {column name: value}."""
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
