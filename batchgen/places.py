"""Places in a payload, by dotted name: ``image_urls`` is a parameter, ``image_urls.2`` the
second item of its list (items count from 1, as numbered columns do), ``elements.1.video_url``
a field of an item. The plan, the run and the manifest all name a file inside a list so."""

from __future__ import annotations

from typing import Any


def put_at(payload: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """A copy of ``payload`` with ``value`` at the canonical dotted ``name`` (``image_urls.2``
    is the second item of ``image_urls``): the parts on the way are copied, the rest shared."""
    head, *path = name.split(".")
    return {**payload, head: _put(payload[head], path, value)}


def _put(node: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    if isinstance(node, list):
        index = int(path[0]) - 1
        return [*node[:index], _put(node[index], path[1:], value), *node[index + 1 :]]
    return {**node, path[0]: _put(node[path[0]], path[1:], value)}


def get_at(payload: dict[str, Any], name: str) -> Any:
    """The value at the canonical dotted ``name`` in ``payload`` (None when it has none)."""
    head, *path = name.split(".")
    node = payload.get(head)
    for part in path:
        if isinstance(node, list) and part.isdigit() and 0 < int(part) <= len(node):
            node = node[int(part) - 1]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node
