"""Server-sent events: the ``data:`` payloads of a stream, one per event (fal's status stream)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable


async def payloads(lines: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    """Each event's ``data:`` lines joined by newlines, as the event ends (a blank line, or
    the end of the stream); other fields (``event:``, ``id:``, comments) are skipped."""
    data: list[bytes] = []
    async for line in lines:
        line = line.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif not line and data:
            yield b"\n".join(data)
            data = []
    if data:
        yield b"\n".join(data)
