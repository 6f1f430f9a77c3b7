"""The one exception the domain raises on a request it refuses."""

from __future__ import annotations


class DomainError(Exception):
    """A command the domain refuses; the message says why in words a user can read (a 4xx)."""
