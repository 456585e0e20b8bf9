"""JSON read with bounds (batchgen.api.bounded), and the client's answers read through them."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from scripted import reply, scripted
from test_client import client

from batchgen.api.answers import Answer, request_id_of
from batchgen.api.bounded import Pruner, TooLarge, loads
from batchgen.api.classify import classify, refusal_in_success
from batchgen.errors import RESULT_TOO_LARGE, KeyRefused, PermanentError, ProtocolError

DEEP = b'{"debug":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b',"video":{"url":"u"}}'


def test_a_deep_answer_is_cut_at_its_depth_not_a_recursion_error() -> None:
    """100,000 levels of nesting: the video is read, the debug object cut at 64 levels."""
    data = loads(DEEP)
    assert data["video"] == {"url": "u"}
    depth, node = 0, data["debug"]
    while isinstance(node, dict):
        node, depth = node["a"], depth + 1
    assert depth == 63
    assert "nested deeper than 64 levels" in node
    json.dumps(data)  # and it can be written back without recursing


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
def test_chunks_of_any_size_give_the_same_copy(size: int) -> None:
    """Strings with escapes, brackets in strings, multi-byte text, long lists: fed in chunks
    of any size, the copy is the one made of the whole text."""
    text = json.dumps(
        {"a": 'x"y\\z[{' * 10, "é": ["q"] * 30, "d": [[1, ']\\"[']] * 10, "n": -1.5e3}
    ).encode()
    whole, cut = Pruner(items=20), Pruner(items=20)
    whole.feed(text)
    for at in range(0, len(text), size):
        cut.feed(text[at : at + size])
    assert cut.text() == whole.text()
    data = json.loads(cut.text())
    assert data["é"][-1] == "(more items: left out by batchgen)"
    assert len(data["é"]) == 21
    assert data["a"] == 'x"y\\z[{' * 10


def test_long_strings_and_lists_are_left_out_and_counted() -> None:
    """A string past the limit is replaced (key or value), a list cut after its items."""
    pruner = Pruner(string=10, items=2)
    pruner.feed(json.dumps({"long": "x" * 100, "k" * 20: [1, 2, 3, 4]}).encode())
    data = json.loads(pruner.text())
    assert data["long"].startswith("(a string longer than 10 bytes")
    assert pruner.dropped == 3
    assert next(v for v in data.values() if isinstance(v, list))[:2] == [1, 2]


def test_a_copy_past_its_bound_raises() -> None:
    """An object of many keys (never cut) past ``keep``: TooLarge, a ValueError."""
    pruner = Pruner(keep=1000)
    with pytest.raises(TooLarge):
        pruner.feed(json.dumps({f"k{i}": i for i in range(500)}).encode())
    with pytest.raises(ValueError, match="Expecting"):
        loads(b"[" * 100)


def test_an_error_in_a_success_is_read_like_one_in_a_4xx() -> None:
    """200 {"detail": "Insufficient balance"} refuses the key; another error fails the row
    as a protocol error; a 200 without an error body is not a refusal; a 4xx carrying the
    same balance words refuses the key."""
    balance = b'{"detail": "Insufficient balance"}'
    assert isinstance(refusal_in_success(200, balance), KeyRefused)
    other = refusal_in_success(200, b'{"error": "bad gateway config"}')
    assert isinstance(other, PermanentError)
    assert other.error_type == "protocol"
    assert refusal_in_success(200, b'{"status": "IN_QUEUE"}') is None
    assert refusal_in_success(200, b"<html>ok</html>") is None
    assert isinstance(classify(400, {}, balance), KeyRefused)
    assert not isinstance(
        classify(422, {}, b'{"detail": "field required: missing key"}'), KeyRefused
    )


async def test_a_result_too_large_even_pruned_is_a_paid_result_too_large() -> None:
    """A result whose pruned copy outgrows the cap: ProtocolError ``result_too_large``."""
    many = {"video": {"url": "u"}, **{f"k{i}": i for i in range(5000)}}
    async with aiohttp.ClientSession() as session, scripted(reply(200, many)) as server:
        queue = client(session, server.url, max_body=10_000)
        with pytest.raises(ProtocolError) as caught:
            await queue.result("rid-1")
    assert caught.value.error_type == RESULT_TOO_LARGE
    assert "too large to read" in str(caught.value)


async def test_a_deep_result_over_the_cap_is_read_pruned() -> None:
    """A 20 MB result (a logs list before the video) over a 1 MB cap: the video is read."""
    logs = b'{"logs":[' + b",".join([b'"step done ' + b"x" * 80 + b'"'] * 220_000) + b"],"
    body = logs + b'"video":{"url":"http://files/v.mp4","file_size":5}}'

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    async with aiohttp.ClientSession() as session, scripted(handler) as server:
        look = await client(session, server.url, max_body=1024 * 1024).result("rid-1")
    assert look.output is not None
    assert look.output["video"]["url"] == "http://files/v.mp4"
    assert len(look.output["logs"]) == 101


@pytest.mark.parametrize(
    "before",
    [
        b'"logs":[' + b",".join([b'"' + b"x" * 1_000_000 + b'"'] * 20) + b"],",  # 20 x 1 MB
        b'"logs":[' + b",".join([b'"' + b"y" * 20_000 + b'"'] * 999) + b"],",  # 999 x 20 KB
        b" " * 20_000_000,  # 20 MB of blanks before the first key
        b'"note":"caf\xe9 \xff",',  # bytes that are not UTF-8
        b'"seed":' + b"9" * 5000 + b",",  # an integer Python would refuse to read
    ],
    ids=["long-strings", "many-strings", "blanks", "not-utf8", "huge-integer"],
)
def test_one_odd_value_never_hides_the_video(before: bytes) -> None:
    """Whatever comes before the video in a result, the video is read (hostile tester's
    shapes of 2026-12-07)."""
    data = loads(b"{" + before + b'"video":{"url":"https://cdn/v.mp4"}}')
    assert data["video"] == {"url": "https://cdn/v.mp4"}


@pytest.mark.parametrize("rid", [".", "..", " ", "x" * 257, "a\nb", "a\x00b", "a\rb"], ids=repr)
def test_a_request_id_no_url_could_carry_is_none(rid: str) -> None:
    """An id a URL's path would fold away (".", ".."), a blank, an overlong one or one with
    control characters is no usable request id (the submit is then uncertain, not sent)."""
    assert request_id_of(Answer(200, {}, json.dumps({"request_id": rid}).encode())) is None


def test_usable_request_ids_pass() -> None:
    """A UUID, and ids with '/', '?', '#' or other scripts (escaped in URLs), pass."""
    for rid in ("d4c4c3a3-b480-4669-95f0-45c2626a4bec", "a/b", "q?x#y", "задача-1"):
        assert request_id_of(Answer(200, {}, json.dumps({"request_id": rid}).encode())) == rid


@pytest.mark.parametrize(
    "body",
    [
        b"Insufficient balance",
        b'"Insufficient balance"',
        b'{"detail": "insufficient_balance"}',
        b'{"error": "Your balance is too low to run this model"}',
        b'{"message": "User is locked. Reason: Exhausted balance"}',
    ],
)
def test_a_balance_refusal_in_a_200_in_any_spelling_refuses_the_key(body: bytes) -> None:
    """Plain text, a JSON string, snake_case, other words: each stops the run (exit 3)."""
    assert isinstance(refusal_in_success(200, body), KeyRefused)
