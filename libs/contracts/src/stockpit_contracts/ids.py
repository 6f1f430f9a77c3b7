"""Ids of events, ledger entries and records.

`new_uuid` is the standard library's `uuid4`: one name for "a new random id" everywhere.
"""

from __future__ import annotations

from uuid import uuid4 as new_uuid

__all__ = ["new_uuid"]
