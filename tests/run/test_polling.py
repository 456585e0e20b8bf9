"""The adaptive poll policy, with numbers."""

from __future__ import annotations

import pytest

from batchgen.run.polling import PollPolicy


def test_before_any_completion_looks_start_early_and_double_up_to_the_seed() -> None:
    """The seed is only a guess until a job completes (a provider may be far faster): looks
    start at min_interval and double, never past the seed."""
    policy = PollPolicy(110.0, min_interval=0.5, max_interval=300)
    assert [policy.delay(t) for t in (0.0, 1.0, 8.0, 64.0, 100.0)] == [0.5, 1.0, 8.0, 46.0, 10.0]


def test_looks_never_further_apart_than_the_max_interval() -> None:
    """A long guessed latency still gets a look every max_interval."""
    assert PollPolicy(110.0, max_interval=30).delay(60.0) == 30.0
    assert PollPolicy(None, max_interval=30).delay(400.0) == 30.0


def test_unknown_seed_looks_early_then_doubles() -> None:
    """With no seed: min_interval first, then as long again as the time elapsed."""
    policy = PollPolicy(None, min_interval=0.5, max_interval=30)
    assert [policy.delay(t) for t in (0.0, 1.0, 8.0)] == [0.5, 1.0, 8.0]


def test_after_a_miss_the_wait_grows_with_elapsed_time() -> None:
    """Past the expected time, the wait is a fraction of the time already taken."""
    policy = PollPolicy(10.0, max_interval=30)
    assert policy.delay(10.0) == 2.5
    assert policy.delay(20.0) == 5.0
    policy.observe(0.0, 10.0)  # learned: the same after a completion
    assert policy.delay(20.0) == 5.0


def test_resumed_job_looks_at_the_remaining_expected_time() -> None:
    """Once latency is learned, a job seen 4 s after submit, expected at 10 s, is looked at
    again 6 s later."""
    policy = PollPolicy(10.0)
    for _ in range(3):
        policy.observe(9.0, 11.0)
    assert policy.delay(4.0) == 6.0


def test_learns_a_shorter_latency() -> None:
    """Jobs found done at the first look pull the expected latency down."""
    policy = PollPolicy(100.0, max_interval=300)
    for _ in range(20):
        policy.observe(0.0, 100.0)
    assert policy.expected == 50.0
    for _ in range(64):
        policy.observe(0.0, policy.expected or 0)
    assert policy.expected is not None
    assert policy.expected <= 12.5


def test_learns_a_longer_latency() -> None:
    """Jobs done between two looks teach the middle of that interval."""
    policy = PollPolicy(10.0, max_interval=300)
    for _ in range(10):
        policy.observe(40.0, 50.0)
    assert policy.expected == 45.0


def test_converges_near_a_constant_latency() -> None:
    """Simulated against a fixed 37 s latency, looks settle close above it."""
    policy = PollPolicy(110.0, max_interval=300)
    looks = []
    for _ in range(300):
        elapsed, last_miss, count = 0.0, 0.0, 0
        while True:
            elapsed += policy.delay(elapsed)
            count += 1
            if elapsed >= 37.0:
                break
            last_miss = elapsed
        policy.observe(last_miss, elapsed)
        looks.append(count)
    assert policy.expected == pytest.approx(37.0, rel=0.25)
    assert sum(looks[-50:]) / 50 <= 3


def test_window_forgets_old_completions() -> None:
    """Only the last `window` completions count."""
    policy = PollPolicy(None, window=4)
    for sample in (100.0, 100.0, 100.0, 100.0, 2.0, 2.0, 2.0):
        policy.observe(sample, sample)
    assert policy.expected == 2.0


def test_bad_bounds_are_refused() -> None:
    """min_interval must be positive and not above max_interval."""
    with pytest.raises(ValueError, match="min_interval"):
        PollPolicy(1.0, min_interval=5, max_interval=1)
