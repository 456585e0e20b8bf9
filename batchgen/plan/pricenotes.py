"""What a plan says of its estimate: jobs priced at a ceiling, and rates fal has changed."""

from __future__ import annotations

from batchgen.plan.falspecs import FalSpecs
from batchgen.plan.model import Plan
from batchgen.plan.price import seconds_of
from batchgen.plan.speccheck import stale_price
from batchgen.plan.text import counted


def say_stale_prices(plan: Plan, fal: FalSpecs) -> None:
    """A built-in spec whose rate differs from fal's live unit price (as last cached by
    ``endpoints check`` or ``refresh``): its estimate may be stale."""
    for ident, ep in plan.endpoints.items():
        if not ep.source.startswith("built-in"):
            continue
        entry = fal.cached(ident)
        said = None if entry is None else stale_price(ep, entry.get("price"))
        if said is not None:
            assert entry is not None
            plan.warnings.append(
                f"the estimate for {ident} may be stale: {said.removeprefix('price: ')} "
                f"(fetched {entry['fetched_at'][:10]}; batchgen endpoints check {ident})"
            )


def say_auto_durations(plan: Plan) -> None:
    """A job whose duration is no length (``"auto"``) is priced at the longest: say so."""
    for ident, ep in plan.endpoints.items():
        name = ep.price.duration_parameter
        longest = ep.longest_seconds()
        jobs = [
            j
            for j in plan.jobs
            if j.endpoint == ident and name in j.payload and seconds_of(j.payload[name]) is None
        ]
        if name and jobs and longest is not None:
            said = ", ".join(sorted({str(j.payload[name]) for j in jobs}))
            plan.warnings.append(
                f"{counted(len(jobs), 'job')} on {ident} ask {name} {said}: the model picks the "
                f"length, so each is priced at the longest, {longest:g} s (the estimate is a "
                "ceiling)"
            )
