"""Answers that break the protocol: too large, unreadable, trickling, a submit without an id."""

from __future__ import annotations

import time

import aiohttp
import pytest
from scripted import endless, reply, scripted, trickle
from test_client import QUEUED, client

from batchgen.api.answers import excerpt
from batchgen.errors import PermanentError, ProtocolError, RetryableError

# -- too large ---------------------------------------------------------------------------------


async def test_endless_answer_is_cut_at_the_cap(session: aiohttp.ClientSession) -> None:
    """A status answer that never ends is read up to the cap, then fails once, clearly."""
    async with scripted(endless) as server:
        with pytest.raises(ProtocolError) as caught:
            await client(session, server.url, max_body=100_000).status("rid")
    assert str(caught.value) == (
        "protocol error: status answered 200 with more than 100000 bytes, "
        "the most batchgen reads from the API"
    )
    assert len(server.seen) == 1


async def test_announced_size_over_the_cap_is_not_read(session: aiohttp.ClientSession) -> None:
    """A Content-Length above the cap fails at once; a submit's says a job may exist."""
    big = reply(200, {"request_id": "rid", "pad": "x" * 5000})
    async with scripted(big) as server:
        api = client(session, server.url, max_body=1000)
        with pytest.raises(ProtocolError, match="more than 1000 bytes"):
            await api.result("rid")
        with pytest.raises(ProtocolError) as caught:
            await api.submit({"prompt": "x"})
    assert caught.value.error_type == "submit_uncertain"
    assert len(server.seen) == 2


async def test_large_error_answer_is_still_classified(session: aiohttp.ClientSession) -> None:
    """An error answer over the cap is classified from its start (a 422 stays the job's own)."""
    huge = reply(422, {"detail": "prompt refused", "pad": "x" * 5000})
    async with scripted(huge) as server:
        with pytest.raises(PermanentError) as caught:
            await client(session, server.url, max_body=1000).result("rid")
    assert type(caught.value) is PermanentError
    assert caught.value.status == 422


# -- unreadable status answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["<html><body>proxy says hi</body></html>", '{"status": "COMPL', "[1, 2]", '{"queue": 1}'],
)
async def test_unreadable_status_fails_the_third_look(
    session: aiohttp.ClientSession, body: str
) -> None:
    """Non-JSON, cut JSON, a list, an object without a status word: retryable twice, then the
    third in a row is a protocol error quoting the answer."""
    async with scripted(reply(200, text=body)) as server:
        api = client(session, server.url)
        for _ in range(2):
            with pytest.raises(RetryableError, match="status answer unreadable"):
                await api.look("rid")
        with pytest.raises(ProtocolError) as caught:
            await api.look("rid")
    expected = excerpt(body.encode())
    assert str(caught.value) == (
        f"protocol error: status answers unreadable (3 in a row): {expected}"
    )
    assert len(server.seen) == 3


async def test_readable_answer_resets_the_count(session: aiohttp.ClientSession) -> None:
    """An unknown status word is readable and starts the count again; counts are per job."""
    junk = reply(200, text="<html>oops</html>")
    async with scripted(junk, junk, reply(202, {"status": "BANANA"}), junk, junk) as server:
        api = client(session, server.url)
        for _ in range(2):
            with pytest.raises(RetryableError):
                await api.status("rid")
        assert (await api.status("rid")).state == "BANANA"
        for rid in ("rid", "rid", "other"):
            with pytest.raises(RetryableError):
                await api.status(rid)
        with pytest.raises(ProtocolError):
            await api.status("rid")


async def test_unreadable_results_count_too(session: aiohttp.ClientSession) -> None:
    """Following by the result route, a 200 that is not a JSON object fails the third look."""
    async with scripted(reply(200, text="not json")) as server:
        api = client(session, server.url, follow="result", unreadable_limit=2)
        with pytest.raises(RetryableError):
            await api.look("rid")
        with pytest.raises(ProtocolError, match=r"result answers unreadable \(2 in a row\)"):
            await api.look("rid")


async def test_reading_a_completed_jobs_output_stays_patient(
    session: aiohttp.ClientSession,
) -> None:
    """result() of a job known done is paid for: unreadable answers stay retryable, however
    many in a row."""
    async with scripted(reply(200, text="not json")) as server:
        api = client(session, server.url, unreadable_limit=2)
        for _ in range(4):
            with pytest.raises(RetryableError, match="result answer unreadable: 'not json'"):
                await api.result("rid")


def test_excerpt_is_one_printable_line() -> None:
    """Control characters and line breaks become spaces; a long body says its length."""
    assert excerpt(b"a\r\n\x00b") == "'a b'"
    assert excerpt(b"x" * 300) == repr("x" * 200) + " (300 bytes in all)"


# -- a trickling answer ------------------------------------------------------------------------


async def test_trickling_answer_is_cut_by_the_total_timeout(
    session: aiohttp.ClientSession,
) -> None:
    """A byte every 20 ms never trips a read timeout; the total per request ends it."""
    async with scripted(trickle) as server:
        api = client(session, server.url, timeout=0.2)
        started = time.monotonic()
        with pytest.raises(RetryableError, match="TimeoutError"):
            await api.status("rid")
    assert len(server.seen) == 4  # the backoff's attempts, each cut at 0.2 s
    assert time.monotonic() - started < 2.0


# -- a submit answered without a request id ----------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        reply(200, {"status": "IN_QUEUE"}),
        reply(200, {"request_id": 12}),
        reply(201, {"request_id": " "}),
        reply(200, text="<html>accepted</html>"),
    ],
)
async def test_submit_without_request_id_is_a_protocol_error(
    session: aiohttp.ClientSession, answer: object
) -> None:
    """A 2xx submit without a usable request_id is sent once: a protocol error that says a
    job may exist (submit_uncertain), quoting the answer."""
    async with scripted(answer) as server:  # type: ignore[arg-type]
        with pytest.raises(ProtocolError) as caught:
            await client(session, server.url).submit({"prompt": "x"})
    error = caught.value
    assert str(error).startswith("protocol error: submit answered 20")
    assert " without a request_id: '" in str(error)
    assert error.error_type == "submit_uncertain"
    assert len(server.seen) == 1


async def test_submit_with_request_id_is_fine(session: aiohttp.ClientSession) -> None:
    """The usual envelope still gives its request id and queue position."""
    async with scripted(reply(200, QUEUED)) as server:
        submitted = await client(session, server.url).submit({"prompt": "x"})
    assert (submitted.request_id, submitted.status.queue_position) == ("rid-1", 3)


# -- billable units ----------------------------------------------------------------------------


async def test_result_reads_billable_units_and_never_guesses_them(
    session: aiohttp.ClientSession,
) -> None:
    """x-fal-billable-units is read as a number; missing, negative or not a number: None."""
    output = {"video": {"url": "u"}}
    answers = [
        reply(200, output, {"x-fal-billable-units": "7.5"}),
        reply(200, output),
        reply(200, output, {"x-fal-billable-units": "lots"}),
        reply(200, output, {"x-fal-billable-units": "-1"}),
    ]
    async with scripted(*answers) as server:
        api = client(session, server.url)
        units = [(await api.result("rid")).units for _ in answers]
    assert units == [7.5, None, None, None]
