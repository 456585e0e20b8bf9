"""The poll policy, with numbers: run times per group, predicted queue waits, scouts, tail."""

from __future__ import annotations

import pytest

from batchgen.run.polling import PollPolicy


def learned(samples: list[float], **options: float) -> PollPolicy:
    """A policy that learned ``samples`` as run times reported by the provider."""
    policy = PollPolicy(10.0, max_interval=300, margin=0.0, **options)  # type: ignore[arg-type]
    for ran in samples:
        policy.observe(0.0, ran, ran=ran)
    return policy


def test_scouts_look_early_and_double_up_to_the_seed() -> None:
    """The seed is only a guess until a job completes (a provider may be far faster): a
    scout's looks start at min_interval and double, never past the seed."""
    policy = PollPolicy(110.0, min_interval=0.5, max_interval=300)
    assert [policy.delay(t) for t in (0.0, 1.0, 8.0, 64.0, 100.0)] == [0.5, 1.0, 8.0, 46.0, 10.0]


def test_the_first_jobs_of_a_group_are_its_scouts() -> None:
    """Two jobs per group scout; the others wait for the seed (or a completion)."""
    policy = PollPolicy(110.0, max_interval=300)
    assert [policy.enlist("a") for _ in range(3)] == [True, True, False]
    assert policy.enlist("b") is True
    assert policy.delay(10.0, "a", scout=False) == 100.0
    assert policy.delay(200.0, "a", scout=False) == 300.0


def test_looks_never_further_apart_than_the_max_interval() -> None:
    """A long guessed latency still gets a look every max_interval."""
    assert PollPolicy(110.0, max_interval=30).delay(60.0) == 30.0
    assert PollPolicy(None, max_interval=30).delay(400.0) == 30.0
    assert PollPolicy(None, max_interval=30).delay(1.0, scout=False) == 30.0


def test_unknown_seed_scouts_look_early_then_double() -> None:
    """With no seed: min_interval first, then as long again as the time elapsed."""
    policy = PollPolicy(None, min_interval=0.5, max_interval=30)
    assert [policy.delay(t) for t in (0.0, 1.0, 8.0)] == [0.5, 1.0, 8.0]


def test_first_look_at_a_high_quantile_of_the_run_times_then_the_ladder() -> None:
    """Learned run times 1..10 s: the first look aims at the 0.75 quantile (7.75 s, read
    between the samples), then at the ladder's (9.73 s, 9.955 s), then waits a quarter of the
    time already taken."""
    policy = learned([float(t) for t in range(1, 11)], quantile=0.75)
    assert policy.expected() == pytest.approx(7.75)  # 3/4 of the way from the 7th to the 8th
    assert policy.delay(0.0) == pytest.approx(7.75)
    assert policy.delay(7.75) == pytest.approx(9.73 - 7.75)  # the ladder's 0.97 quantile
    assert policy.delay(9.73) == 0.5  # its 0.995 (9.955 s), no sooner than min_interval
    assert policy.delay(12.0) == 3.0


def test_a_looks_aim_allows_a_margin_past_the_quantile() -> None:
    """Timers are not exact: the first look aims 5 % past the quantile."""
    policy = PollPolicy(10.0, max_interval=300)
    for _ in range(10):
        policy.observe(0.0, 20.0, ran=20.0)
    assert policy.delay(0.0) == pytest.approx(21.0)


def test_a_predicted_wait_in_the_queue_delays_the_first_look() -> None:
    """A job predicted to wait 3 s in the queue is looked at 3 s plus its run time later."""
    policy = learned([5.0] * 10)
    assert policy.delay(0.0, wait=3.0) == 8.0
    assert policy.delay(2.0, wait=3.0) == 6.0


def test_groups_learn_their_own_run_times() -> None:
    """10 s videos run longer than 5 s ones; a group with no completions yet borrows every
    group's run times rather than wait for the guess."""
    policy = PollPolicy(100.0, max_interval=300, margin=0.0)
    for _ in range(10):
        policy.observe(0.0, 50.0, ("kling", "5"), ran=50.0)
        policy.observe(0.0, 100.0, ("kling", "10"), ran=100.0)
    assert policy.delay(0.0, ("kling", "5")) == 50.0
    assert policy.delay(0.0, ("kling", "10")) == 100.0
    assert policy.knows(("veo", "8s"))
    assert policy.delay(0.0, ("veo", "8s")) == 100.0  # all samples: the 0.75 quantile


def test_run_times_the_provider_reports_are_taken_as_they_are() -> None:
    """inference_time is the sample; without it, the middle of the interval it ended in."""
    policy = PollPolicy(10.0, max_interval=300, margin=0.0, quantile=0.5)
    policy.observe(0.0, 30.0, ran=12.0)
    assert policy.expected() == 12.0
    other = PollPolicy(10.0, max_interval=300, margin=0.0, quantile=0.5)
    other.observe(40.0, 50.0)
    assert other.expected() == 45.0


def test_a_queue_fills_in_waves() -> None:
    """Eight jobs of 1 s started at 0: queued jobs behind 0..7 others all start at 1 s, the
    next eight at 2 s (jobs started together end together)."""
    policy = learned([1.0] * 10)
    for n in range(8):
        assert policy.track(f"run{n}", "", 0.0, queued=False) == 0.0
    firsts = [policy.track(f"q{p}", "", 0.0, queued=True, queue_position=p) for p in range(8)]
    assert firsts == [1.0] * 8
    assert policy.track("q8", "", 0.0, queued=True, queue_position=8) == 2.0


def test_jobs_that_should_have_ended_are_taken_as_ended() -> None:
    """A job predicted to end before now (done, not yet seen done) frees no later slot."""
    policy = learned([1.0] * 10)
    policy.track("old", "", 0.0, queued=False)
    policy.track("new", "", 5.0, queued=False)
    assert policy.track("q", "", 5.5, queued=True, queue_position=0) == 6.0
    policy.forget("new")
    assert policy.track("q", "", 5.5, queued=True, queue_position=0) == 5.5


def test_past_the_jobs_in_flight_the_throughput_paces_the_queue() -> None:
    """The account's concurrency is read off a submit (9 in flight, 1 ahead: 8 run); when the
    provider holds jobs we do not follow, the queue moves at 8 per mean run time."""
    policy = learned([2.0] * 10)
    assert policy.throughput() is None
    policy.track("a", "", 0.0, queued=True, queue_position=1, others=9)
    assert policy.throughput() == pytest.approx(4.0)
    assert policy.track("b", "", 0.0, queued=True, queue_position=4) == pytest.approx(1.25)


def test_the_tail_looks_at_the_median_first() -> None:
    """Once nothing is left to submit, a late look delays the end: aim at the median."""
    policy = learned([float(t) for t in range(1, 11)])
    assert policy.delay(0.0) == pytest.approx(7.75)  # the 0.75 quantile
    policy.tail = True
    assert policy.delay(0.0) == pytest.approx(5.5)  # the median of 1..10
    assert policy.delay(5.5) == pytest.approx(0.55)  # past it: every tenth of the median


def test_first_in_the_queue_with_a_runner_free_starts_now() -> None:
    """An account of 2 runners, one job of ours running: a job said queued at position 0
    waits only to be picked up, so it starts now, not when the running one ends."""
    policy = learned([2.0] * 10)
    policy.track("a", "", 0.0, queued=True, queue_position=1, others=3)  # 3 - 1: 2 run
    policy.forget("a")
    policy.track("run", "", 0.0, queued=False)
    assert policy.track("next", "", 0.5, queued=True, queue_position=0) == 0.5
    policy.track("run2", "", 0.5, queued=False)
    assert policy.track("third", "", 0.6, queued=True, queue_position=0) == pytest.approx(2.0)


def test_a_submit_first_in_the_queue_does_not_tell_the_concurrency() -> None:
    """At position 0 a job may be waiting for pickup: 1 in flight, position 0 says nothing
    of the account's concurrency (it would read as 1 runner)."""
    policy = learned([2.0] * 10)
    policy.track("b", "", 0.0, queued=True, queue_position=0, others=1)
    assert policy.throughput() is None


def test_two_samples_aim_at_their_mean_in_the_tail() -> None:
    """Two run times learned (2 s and 4 s): the tail's first look aims at their mean, not at
    the larger, so a first estimate that came out long does not make every last look late."""
    policy = learned([2.0, 4.0])
    policy.tail = True
    assert policy.delay(0.0) == pytest.approx(3.0)


def test_converges_to_one_look_per_job_at_a_constant_latency() -> None:
    """Simulated against a fixed 37 s run reported by the provider: after the scouts, each
    job is found done at its first look, less than 5 % after it ended."""
    policy = PollPolicy(110.0, max_interval=300)
    looks = []
    for n in range(100):
        scout = policy.enlist()
        elapsed, last_miss, count = 0.0, 0.0, 0
        while True:
            elapsed += policy.delay(elapsed, scout=scout)
            count += 1
            if elapsed >= 37.0:
                break
            last_miss = elapsed
        policy.observe(last_miss, elapsed, ran=37.0)
        looks.append((count, elapsed))
        if n == 0:
            assert count > 1  # the first scout had only the guess
    assert all(count == 1 and elapsed <= 37.0 * 1.05 + 1e-9 for count, elapsed in looks[1:])


def test_window_forgets_old_completions() -> None:
    """Only the last `window` completions count."""
    policy = PollPolicy(None, window=4)
    for sample in (100.0, 100.0, 100.0, 100.0, 2.0, 2.0, 2.0, 2.0):
        policy.observe(sample, sample)
    assert policy.expected() == 2.0


def test_bad_bounds_are_refused() -> None:
    """min_interval must be positive and not above max_interval."""
    with pytest.raises(ValueError, match="min_interval"):
        PollPolicy(1.0, min_interval=5, max_interval=1)


def test_each_key_has_its_own_queue() -> None:
    """Jobs of another key (another account) free no slot in this key's queue."""
    policy = learned([1.0] * 10)
    policy.track("a-running", "", 0.0, queued=False, lane="A")
    policy.track("b-running", "", 0.5, queued=False, lane="B")
    assert policy.track("b-queued", "", 0.5, queued=True, queue_position=0, lane="B") == 1.5
    assert policy.track("a-queued", "", 0.5, queued=True, queue_position=0, lane="A") == 1.0


def test_starts_predicted_on_the_seed_are_predicted_again_once_the_run_learns() -> None:
    """Queued behind two running jobs, a job's start is predicted on the catalog's 100 s;
    the first completions say 1 s, and its start is predicted again from what was said."""
    policy = PollPolicy(100.0, max_interval=300, margin=0.0)
    policy.track("a", "", 0.0, queued=False)
    policy.track("b", "", 0.0, queued=False)
    assert policy.track("q", "", 0.0, queued=True, queue_position=0) == 100.0
    generation = policy.generation
    policy.observe(0.5, 1.5, ran=1.0)
    assert policy.generation > generation
    assert policy.start_of("q") == pytest.approx(1.0)


def test_a_small_move_of_the_learned_times_predicts_nothing_again() -> None:
    """Only a move of the mean by more than a tenth makes the starts stale."""
    policy = learned([1.0] * 10)
    generation = policy.generation
    policy.observe(0.0, 1.02, ran=1.02)
    assert policy.generation == generation
    for _ in range(6):  # slower jobs now: the mean moves, by more than a tenth each time
        policy.observe(0.0, 9.0, ran=9.0)
    assert generation + 1 < policy.generation < generation + 6


def test_a_job_first_seen_running_started_between_its_looks() -> None:
    """Said queued behind a job due to end at 1 s, seen running at 3 s: it started at 1 s,
    not when it was seen (that would make its run time look 2 s shorter)."""
    policy = learned([1.0] * 10)
    policy.track("a", "", 0.0, queued=False)
    policy.track("q", "", 0.0, queued=True, queue_position=0)
    assert policy.track("q", "", 3.0, queued=False) == pytest.approx(1.0)
    late = learned([5.0] * 10)  # predicted to start at 5 s, seen running at 3 s: by 3 s
    late.track("a", "", 0.0, queued=False)
    late.track("q", "", 0.0, queued=True, queue_position=0)
    assert late.track("q", "", 3.0, queued=False) == pytest.approx(3.0)


def test_the_ends_of_forgotten_jobs_still_time_the_queue_behind_them() -> None:
    """Predicted again after the job ahead ended (at 1.2 s), a queued job starts at that end,
    not at the end of the job after it."""
    policy = PollPolicy(100.0, max_interval=300, margin=0.0)
    policy.track("a", "", 0.0, queued=False)
    policy.track("b", "", 0.5, queued=False)
    policy.track("q", "", 0.5, queued=True, queue_position=0)
    policy.forget("a", ended=1.2)
    policy.observe(0.0, 1.2, ran=1.2)
    assert policy.start_of("q") == pytest.approx(1.2)


def test_a_run_time_longer_than_the_job_existed_is_not_believed() -> None:
    """inference_time on another clock (a time-scaled emulator says 110 s for a job seen done
    1.2 s after its submit) gives way to what the run saw."""
    policy = PollPolicy(100.0, max_interval=300, margin=0.0, quantile=0.5)
    policy.observe(0.8, 1.6, ran=110.0)
    assert policy.expected() == pytest.approx(1.2)
