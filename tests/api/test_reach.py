"""Reach: how long a never-answered API is tried, on a clock the test moves."""

from __future__ import annotations

import pytest
from runs import Clock

from batchgen.api.reach import LOOPBACK_GRACE, Reach
from batchgen.errors import Unreachable


def test_a_refused_connection_to_this_machine_is_given_up_after_the_grace() -> None:
    """Nothing listening on loopback is named after LOOPBACK_GRACE seconds, well before the
    25 s given to a remote host; a remote refusal still waits its full time."""
    clock = Clock(100.0)
    here = Reach(give_up_after=25.0, clock=clock)
    assert here.cannot_connect("http://127.0.0.1:8787", "refused", nobody_here=True) is False
    clock.now += LOOPBACK_GRACE - 0.1
    assert here.cannot_connect("http://127.0.0.1:8787", "refused", nobody_here=True) is False
    clock.now += 0.2
    with pytest.raises(Unreachable, match=r"nothing listens at http://127\.0\.0\.1:8787 on this"):
        here.cannot_connect("http://127.0.0.1:8787", "refused", nobody_here=True)
    far = Reach(give_up_after=25.0, clock=clock)
    far.cannot_connect("https://api.example", "refused")
    clock.now += 10
    assert far.cannot_connect("https://api.example", "refused") is False
    clock.now += 16
    with pytest.raises(Unreachable, match="no answer for 25 s"):
        far.cannot_connect("https://api.example", "refused")
