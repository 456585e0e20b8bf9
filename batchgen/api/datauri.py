"""Data URIs: a file inline in the payload, for a provider with no storage to upload it to."""

from __future__ import annotations

import base64

MIB = 1024 * 1024
# The largest file sent inline as a data: URI (its text is a third larger). No model documents
# a limit: this keeps each submit small enough for any proxy.
DATA_URI_MAX_BYTES = 4 * MIB


def data_uri(data: bytes, mime: str) -> str:
    """``data`` inline: ``data:<mime>;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def describe_data_uri(mime: str, size: int) -> str:
    """How a data: URI is recorded (the ledger and manifest never hold one whole)."""
    return f"data:{mime};base64 ({size} bytes)"
