"""Random (version 4) UUIDs made in bulk, for ids made once per row of a large write, and
UUIDs read cheaply from their text.

`uuid.uuid4()` reads the system's randomness and builds a Python-level `UUID` for each id, and
`str()` of one is Python-level too. These are asyncpg's own UUIDs (a `uuid.UUID` subclass
written in C: equal to and hashing like the standard one), made from one read of the system's
randomness, their text made in C, and asyncpg writes them to a `uuid` column without
conversion (figures in docs/performance.md).
"""

from __future__ import annotations

import os
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as _PgUUID

# asyncpg's UUID class, for reading many UUIDs from their text: `FastUUID(text)` parses in C,
# and its text, hash and comparisons are C calls too. It takes
# the canonical form (and upper case, and no dashes), not the standard one's braces or URN.
FastUUID: type[UUID] = _PgUUID

# Byte 6 keeps its low nibble under version 4; byte 8 its low six bits under the RFC 4122
# variant (binary 10).
_VERSION = bytes((value & 0x0F) | 0x40 for value in range(256))
_VARIANT = bytes((value & 0x3F) | 0x80 for value in range(256))


def random_uuids(count: int) -> list[UUID]:
    """`count` random version 4 UUIDs."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    data = bytes(raw)
    return [_PgUUID(data[start : start + 16]) for start in range(0, 16 * count, 16)]
