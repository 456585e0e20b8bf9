"""Provider presets, overrides and where the key comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.api.providers import MOCK_KEY, connect, load_presets
from batchgen.errors import UsageError
from batchgen.plan.settings import RunSettings


def test_presets_come_from_the_data_file() -> None:
    """fal, quickrouter and mock are presets with their base URL, scheme and key variable."""
    presets = load_presets()
    assert presets["fal"].base_url == "https://queue.fal.run"
    assert (presets["quickrouter"].auth_scheme, presets["quickrouter"].api_key_env) == (
        "bearer",
        "QUICKROUTER_API_KEY",
    )


def test_key_from_the_environment_with_the_presets_scheme() -> None:
    """The key is read from the preset's variable and sent with its scheme."""
    fal = connect(RunSettings(), environ={"FAL_KEY": "id:secret"})
    assert fal.authorization == "Key id:secret"
    router = connect(RunSettings(provider="quickrouter"), environ={"QUICKROUTER_API_KEY": "t"})
    assert (router.base_url, router.authorization) == ("https://api.quickrouter.ai", "Bearer t")


def test_overrides_win_over_the_preset() -> None:
    """--base-url, --auth-scheme and --api-key-env replace the preset's values."""
    settings = RunSettings(
        base_url="https://proxy.example/fal/", auth_scheme="bearer", api_key_env="MY_KEY"
    )
    conn = connect(settings, environ={"MY_KEY": "k", "FAL_KEY": "other"})
    assert (conn.base_url, conn.authorization) == ("https://proxy.example/fal", "Bearer k")


def test_key_file(tmp_path: Path) -> None:
    """--api-key-file is read (stripped) and wins over the environment."""
    path = tmp_path / "key"
    path.write_text("from-file\n")
    assert (
        connect(RunSettings(), api_key_file=path, environ={"FAL_KEY": "env"}).api_key == "from-file"
    )
    path.write_text("  \n")
    with pytest.raises(UsageError, match="empty"):
        connect(RunSettings(), api_key_file=path)


def test_missing_key_names_the_variable() -> None:
    """Without a key the error says which variable to set."""
    with pytest.raises(UsageError, match="FAL_KEY"):
        connect(RunSettings(), environ={})


def test_mock_needs_no_key() -> None:
    """The emulator preset works without any key set."""
    assert connect(RunSettings(provider="mock"), environ={}).api_key == MOCK_KEY


def test_plain_http_warns_unless_loopback() -> None:
    """http:// is allowed; a warning unless the host is loopback."""
    env = {"FAL_KEY": "k"}
    remote = connect(RunSettings(base_url="http://proxy.example"), environ=env)
    assert "unencrypted" in remote.warnings[0]
    for host in ("127.0.0.1:8787", "localhost", "[::1]:9"):
        assert connect(RunSettings(base_url=f"http://{host}"), environ=env).warnings == ()


def test_bad_base_url_and_provider_are_usage_errors() -> None:
    """A base URL that is not http(s), or an unknown provider, is refused."""
    with pytest.raises(UsageError, match="http"):
        connect(RunSettings(base_url="ftp://x"), environ={"FAL_KEY": "k"})
    with pytest.raises(UsageError, match="unknown provider"):
        connect(RunSettings(provider="nope"), environ={})


def test_the_key_is_never_shown() -> None:
    """Neither repr nor public() contains the key."""
    conn = connect(RunSettings(), environ={"FAL_KEY": "sekrit"})
    assert "sekrit" not in repr(conn)
    assert "sekrit" not in str(conn.public())
