"""``run --on-finish CMD``: the user's command, run when a run ends, for a notification."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import click

from batchgen.api.providers import load_presets


def run_on_finish(command: str, plan: Any, result: Any) -> None:
    """Run the user's --on-finish command with the outcome in its environment; its failure
    is reported, never the run's."""
    env = dict(os.environ)
    preset = load_presets().get(plan.settings.provider)
    names = {key.env for key in plan.settings.key_envs()}
    for name in {*names, preset.api_key_env if preset else None}:
        if name:
            env.pop(name, None)  # the keys go to their own host only
    env.update(
        BATCHGEN_OUTCOME=result.outcome,
        BATCHGEN_MESSAGE=result.message,
        BATCHGEN_OUT=str(plan.output_dir),
        BATCHGEN_DONE=str(result.counts.get("done", 0)),
        BATCHGEN_FAILED=str(result.counts.get("failed", 0)),
        BATCHGEN_SPENT_USD=f"{result.spent_usd:.2f}",
    )
    try:
        done = subprocess.run(command, shell=True, env=env, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        click.echo(f"warning: --on-finish {command!r} did not run: {exc}", err=True)
        return
    if done.returncode:
        click.echo(f"warning: --on-finish {command!r} exited {done.returncode}", err=True)
