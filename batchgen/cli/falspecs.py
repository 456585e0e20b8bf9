"""``--platform-url`` and ``--offline``: where ``plan`` and ``run`` ask fal for the spec of an
endpoint with no built-in one (see ``batchgen.plan.falspecs``)."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from batchgen.plan.falspecs import FalSpecs

PLATFORM_HELP = (
    "fal's platform API, asked for the schema and price of an endpoint batchgen has no spec "
    "for (FAL_KEY, if set, is sent to it). Default: the fal preset's, https://api.fal.ai; "
    "none with --mock."
)
OFFLINE_HELP = (
    "Ask no platform API: an endpoint with no built-in spec uses its cached spec, else runs "
    "as passthrough. BATCHGEN_OFFLINE=1 does the same."
)


def fal_specs(
    platform_url: str | None,
    offline: bool,
    *,
    mock: bool = False,
    elsewhere: bool = False,
    asked: bool = False,
) -> FalSpecs:
    """The FalSpecs of these options; UsageError for a platform URL that is not one. With
    ``mock``, or a run on another provider or base URL (``elsewhere``), fal's platform is
    asked only when ``--platform-url`` names it. ``BATCHGEN_OFFLINE=1`` is ``--offline``."""
    # ``asked``: a command whose whole point is to ask (endpoints refresh, check).
    offline = offline or (
        not asked and os.environ.get("BATCHGEN_OFFLINE", "").strip() not in ("", "0")
    )
    from batchgen.api.models import lookup
    from batchgen.api.network import Network
    from batchgen.api.providers import check_base_url, load_presets
    from batchgen.plan.falspecs import FalSpecs

    url = platform_url or (None if mock or elsewhere else load_presets()["fal"].platform_url)
    if url is None or offline:
        return FalSpecs(None, url, offline=offline)
    for warning in check_base_url(url):
        click.echo(f"warning: {warning.replace('base URL', 'platform URL')}", err=True)
    key = os.environ.get("FAL_KEY", "").strip()
    fetch = functools.partial(lookup, url.rstrip("/"), f"Key {key}" if key else None)

    def answers(endpoint_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        info = fetch(endpoint_id, Network.from_env())
        return info.model, None if info.price is None else info.price.public()

    return FalSpecs(answers, url.rstrip("/"))
