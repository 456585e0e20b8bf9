"""The one YAML loader of batchgen: safe, no base-60 numbers, and no alias bombs.

Every YAML file a user gives (prompt rows, job specs, endpoint specs) is read with ``Loader``:

- YAML 1.1 reads an unquoted ``16:9`` as the integer 969 and ``2:1`` as 121; here an aspect
  ratio stays the text it looks like.
- An alias (``*name``) repeats a whole anchored node; nine aliases of nine aliases of ... make
  a few lines stand for a billion values (the "billion laughs"). The composer counts how many
  values the aliases of a document stand for and refuses the document past
  ``Loader.max_alias_values``, long before anything is expanded; an alias inside the very node
  it names is refused too.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from batchgen.errors import InputError

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class AliasBomb(ComposerError):
    """A document whose aliases stand for too many values, or that contains itself."""


class TooDeep(ComposerError):
    """A document nested deeper than ``Loader.max_depth`` (the composer recurses per level)."""


class Loader(yaml.SafeLoader):
    """YAML's safe loader without YAML 1.1's base-60 numbers, with aliases bounded."""

    # Values that the aliases of one document may stand for in all. A hand-written spec or a
    # row file that merges a base row into every row (``<<: *base``) stays far below.
    max_alias_values = 100_000
    # Levels of nesting: a spec needs 4 or 5; Python's recursion gives out near 300.
    max_depth = 100

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
        self._aliased = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self._depth >= self.max_depth:
            raise TooDeep(
                problem=f"refused: nested more than {self.max_depth} levels deep",
                problem_mark=self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        self._depth += 1
        try:
            return self._compose(parent, index)
        finally:
            self._depth -= 1

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:  # the anchored node is still being composed
                    raise AliasBomb(
                        problem=f"alias *{event.anchor} is inside the node it names",
                        problem_mark=event.start_mark,
                    )
                self._aliased += size
                if self._aliased > self.max_alias_values:
                    raise AliasBomb(
                        problem=f"refused: its aliases (*{event.anchor}...) stand for more "
                        f"than {self.max_alias_values:,} values (a YAML bomb?)",
                        problem_mark=event.start_mark,
                    )
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        if node is not None:
            self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _kids(node))
        return node

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python refuses to read more than 4,300 digits
            raise ConstructorError(
                problem="a number too long to read", problem_mark=node.start_mark
            ) from None


Loader.add_constructor(_INT, Loader.construct_yaml_int)


def _kids(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def yaml_problem(name: str, exc: yaml.YAMLError) -> InputError:
    """An InputError for a YAML error, at the line and column YAML names."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    if not isinstance(exc, AliasBomb | TooDeep):
        what = f"not valid YAML: {what}"
    if mark is None:
        return InputError.one(name, what)
    return InputError.one(name, f"{what} (at column {mark.column + 1})", mark.line + 1)


def load_yaml(name: str, text: str) -> Any:
    """``text`` as plain Python values, through ``Loader``; InputError on any YAML problem."""
    loader = Loader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise yaml_problem(name, exc) from None
    finally:
        loader.dispose()
