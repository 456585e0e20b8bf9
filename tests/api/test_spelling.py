"""Answers as proxies spell them: status words in any case, ``data`` envelopes, cancel answers
saying the job ended; over loopback, and the reading rules themselves."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from scripted import reply, scripted
from test_client import client

from batchgen.api.answers import unwrapped
from batchgen.api.classify import classify
from batchgen.api.status import ALREADY_COMPLETED, Status, cancel_word, state_word
from batchgen.errors import RetryableError

VIDEO = {"video": {"url": "https://v3.fal.media/files/x/output.mp4", "file_size": 10}}


@pytest.mark.parametrize(
    ("words", "fal"),
    [
        (("completed", "Completed", "COMPLETED", " complete ", "succeeded", "failed"), "COMPLETED"),
        (("in_progress", "in-progress", "IN PROGRESS", "In Progress", "running"), "IN_PROGRESS"),
        (("queued", "in_queue", "In Queue", "pending"), "IN_QUEUE"),
        (("cancelled", "canceled", "Canceled"), "CANCELLED"),
        (("cancellation_requested", "Cancellation Requested"), "CANCELLATION_REQUESTED"),
    ],
)
def test_status_words_are_read_in_any_spelling(words: tuple[str, ...], fal: str) -> None:
    """Every spelling of a status word a proxy uses reads as fal's word."""
    assert {state_word(word) for word in words} == {fal}


def test_unknown_status_words_are_kept_as_they_came() -> None:
    """A word batchgen does not know is tolerated and kept as it came, not made up."""
    assert state_word("Warming up") == "Warming up"
    assert Status.parse({"status": "Warming up"}).state == "Warming up"


def test_cancel_answers_saying_the_job_ended() -> None:
    """A cancel's word in any spelling, a COMPLETED, or a detail saying the job already ended
    are ALREADY_COMPLETED; a cancel asked is CANCELLATION_REQUESTED; silence is None."""
    for word in ("ALREADY_COMPLETED", "already_completed", "Already Completed", "completed"):
        assert cancel_word(word) == ALREADY_COMPLETED
    assert cancel_word(None, "Request rid has already completed") == ALREADY_COMPLETED
    assert cancel_word(None, "the job has finished") == ALREADY_COMPLETED
    assert cancel_word("cancellation_requested") == "CANCELLATION_REQUESTED"
    assert cancel_word(None, "Request is still in progress") is None


def test_only_a_clear_envelope_is_unwrapped() -> None:
    """``{"data": {...}}`` is read inside it, beside scalars only; an object with a status of
    its own, something else that could be an output beside ``data``, or a File named ``data``
    is read as it is."""
    inner = {"status": "COMPLETED"}
    assert unwrapped({"data": inner}) == inner
    assert unwrapped({"data": inner, "success": True, "code": 0, "errors": []}) == inner
    kept: list[Any] = [
        {"data": inner, "status": "ok"},
        {"data": inner, "video": VIDEO["video"]},
        {"data": inner, "images": [{"url": "u"}]},
        {"data": {"url": "https://v3.fal.media/files/x.json"}},
        {"data": "text"},
        {"detail": "no envelope"},
    ]
    for answer in kept:
        assert unwrapped(answer) == answer


def test_wrapped_errors_are_classified_as_their_content() -> None:
    """A wrapped "still in progress" is still in progress (retried), not a refusal."""
    error = classify(400, {}, b'{"data": {"detail": "Request is still in progress"}}')
    assert isinstance(error, RetryableError)


async def test_lower_case_and_wrapped_status_answers(session: aiohttp.ClientSession) -> None:
    """Status answers in lower case, Capitalised, hyphenated and in a data envelope read as
    fal's words; the queue position inside the envelope is kept."""
    async with scripted(
        reply(202, {"data": {"status": "in_queue", "queue_position": 2}}),
        reply(202, {"status": "in-progress"}),
        reply(200, {"data": {"status": "Completed", "metrics": {"inference_time": 1.5}}}),
    ) as server:
        api = client(session, server.url)
        seen = [await api.status("rid") for _ in range(3)]
    assert [(s.state, s.queue_position) for s in seen] == [
        ("IN_QUEUE", 2),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    assert seen[2].done
    assert seen[2].inference_time == 1.5


async def test_wrapped_result_and_pending_result(session: aiohttp.ClientSession) -> None:
    """Result polling reads a wrapped "still in progress" (400) and a wrapped lower-case
    status body (202) as not done, then the wrapped output as the output."""
    async with scripted(
        reply(400, {"data": {"detail": "Request is still in progress"}}),
        reply(202, {"data": {"status": "in_progress"}}),
        reply(200, {"data": VIDEO}, headers={"x-fal-billable-units": "5"}),
    ) as server:
        api = client(session, server.url, follow="result")
        looks = [await api.look("rid") for _ in range(3)]
    assert [look.status.state for look in looks] == ["NOT_READY", "IN_PROGRESS", "COMPLETED"]
    assert looks[2].output == VIDEO
    assert looks[2].units == 5.0


async def test_cancel_answered_already_completed_in_any_spelling(
    session: aiohttp.ClientSession,
) -> None:
    """A cancel answered already_completed (any case, in an envelope, or said in a detail) is
    ALREADY_COMPLETED; a lower-case cancellation_requested is CANCELLATION_REQUESTED."""
    async with scripted(
        reply(400, {"status": "already_completed"}),
        reply(400, {"data": {"status": "Already Completed"}}),
        reply(400, {"detail": "Request has already completed"}),
        reply(200, {"status": "cancellation_requested"}),
    ) as server:
        api = client(session, server.url)
        words = [await api.cancel("rid") for _ in range(4)]
    assert words == [ALREADY_COMPLETED] * 3 + ["CANCELLATION_REQUESTED"]
