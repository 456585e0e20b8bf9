"""Provider presets, overrides and where the key comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.api.providers import (
    MOCK_KEY,
    Connection,
    Storage,
    connect,
    load_presets,
    redact,
)
from batchgen.errors import InputError, UsageError
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


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("sk-one\nsk-two\n", "holds 2 lines: put the key alone on one line"),
        ("# my fal key\r\nsk-one", "holds 2 lines"),
        ("sk-\x01one", "holds a control character at position 4"),
        ("Key sk-one", "holds a space at position 4"),
        ("sk-ōne", "holds a non-ASCII character at position 4"),
    ],
)
def test_key_file_must_be_one_clean_line(tmp_path: Path, text: str, problem: str) -> None:
    """A key file with more than one line, a control character, a space or non-ASCII text is
    refused before anything is sent, naming the file and never quoting the key."""
    path = tmp_path / "key"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        connect(RunSettings(), api_key_file=path)
    assert str(caught.value).startswith(f"the API key file {path} {problem}")
    assert "sk-" not in str(caught.value)


@pytest.mark.parametrize("value", ["sk-one\nsk-two", "sk-one\x1b[2J", "sk\tone"])
def test_key_from_the_environment_must_be_clean(value: str) -> None:
    """A key variable with a newline or a control character inside is refused, naming the
    variable; surrounding whitespace is still trimmed."""
    with pytest.raises(UsageError, match="the environment variable FAL_KEY holds") as caught:
        connect(RunSettings(), environ={"FAL_KEY": value})
    assert "sk" not in str(caught.value)
    assert connect(RunSettings(), environ={"FAL_KEY": " sk-one\n"}).api_key == "sk-one"


def test_client_refuses_a_header_breaking_key() -> None:
    """A Connection built by hand with a bad key is refused by the client before any request."""
    from batchgen.api.client import QueueClient
    from batchgen.plan.endpoint import resolve

    with pytest.raises(UsageError, match="control or non-ASCII"):
        QueueClient(
            None,  # type: ignore[arg-type]  # never reached
            base_url="http://127.0.0.1:9",
            endpoint=resolve("fal-ai/kling-video/v2.5-turbo/pro/text-to-video"),
            authorization="Key sk-one\nX-Injected: 1",
        )


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:hunter2@proxy.example/fal",
        "http://hunter2@127.0.0.1:8787",
        "https://alice:hun@ter2@proxy.example",
        "alice:hunter2@proxy.example",
    ],
)
def test_base_url_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    """user:password@ in --base-url, in the spec's run.base_url, or overridden by the emulator's
    URL, is refused; the message shows ***@ in place of the credentials."""
    env = {"FAL_KEY": "k"}
    for settings, given in ((RunSettings(), url), (RunSettings(base_url=url), None)):
        with pytest.raises(UsageError, match=r"\*\*\*@.*user name or password") as caught:
            connect(settings, environ=env, base_url=given)
        assert "hunter2" not in str(caught.value)
        assert "ter2" not in str(caught.value)
    with pytest.raises(UsageError):
        connect(RunSettings(base_url=url), environ=env, base_url="http://127.0.0.1:8787")


def test_redact_and_public_hide_credentials() -> None:
    """redact() keeps scheme, host and path; public() (written to run.json) shows no password."""
    assert redact("https://a:b@h.example:8/x?y=@z") == "https://***@h.example:8/x?y=@z"
    assert redact("https://h.example/p@th") == "https://h.example/p@th"
    conn = Connection("fal", "https://a:pw@h.example", "key", "FAL_KEY", "k")
    assert conn.public()["base_url"] == "https://***@h.example"


def test_unknown_provider_gets_a_did_you_mean() -> None:
    """A misspelt provider is refused with the preset it most likely meant."""
    with pytest.raises(UsageError, match="did you mean 'quickrouter'"):
        connect(RunSettings(provider="quikrouter"), environ={"QUICKROUTER_API_KEY": "k"})


def test_each_preset_names_its_storage() -> None:
    """fal uploads to fal storage with the same key, the emulator to itself, quickrouter
    inlines data URIs; the storage's key is never shown or written."""
    fal = connect(RunSettings(), environ={"FAL_KEY": "id:secret"})
    assert fal.storage == Storage("fal", "https://rest.fal.ai", "FAL_KEY", "id:secret")
    mock = connect(RunSettings(provider="mock"), base_url="http://127.0.0.1:9999")
    assert mock.storage == Storage("fal", "http://127.0.0.1:9999", "BATCHGEN_MOCK_KEY", MOCK_KEY)
    router = connect(RunSettings(provider="quickrouter"), environ={"QUICKROUTER_API_KEY": "t"})
    assert router.storage == Storage("data")
    assert "id:secret" not in repr(fal) + str(fal.public())
    assert fal.public()["storage"] == {
        "mode": "fal",
        "base_url": "https://rest.fal.ai",
        "api_key_env": "FAL_KEY",
    }


def test_upload_flags_override_the_presets_storage() -> None:
    """--upload fal takes FAL_KEY whatever the provider (refused without it); --upload data
    inlines; --storage-base-url names the host."""
    environ = {"QUICKROUTER_API_KEY": "t", "FAL_KEY": "fk"}
    settings = RunSettings(provider="quickrouter", upload="fal")
    assert connect(settings, environ=environ).storage == Storage(
        "fal", "https://rest.fal.ai", "FAL_KEY", "fk"
    )
    moved = RunSettings(provider="fal", storage_base_url="https://storage.example/")
    assert connect(moved, environ=environ).storage.base_url == "https://storage.example"
    inline = RunSettings(provider="fal", upload="data")
    assert connect(inline, environ=environ).storage == Storage("data")
    with pytest.raises(UsageError, match=r"--upload fal needs a fal key: set .* FAL_KEY"):
        connect(settings, environ={"QUICKROUTER_API_KEY": "t"})
    with pytest.raises(UsageError, match="user name or password"):
        connect(RunSettings(storage_base_url="https://u:p@x.example"), environ=environ)


POOL_ENV = {"FAL_KEY_A": "sk-aaa", "FAL_KEY_B": "sk-bbb"}


def test_a_pool_reads_each_key_from_its_own_variable() -> None:
    """--api-key-env A,B reads one key from each variable, in order; the first is the
    connection's own; each is named by its variable and fingerprint, never by the key."""
    conn = connect(RunSettings(api_key_env="FAL_KEY_A,FAL_KEY_B"), environ=POOL_ENV)
    assert [key.env for key in conn.pool] == ["FAL_KEY_A", "FAL_KEY_B"]
    assert (conn.api_key_env, conn.api_key, conn.authorization) == (
        "FAL_KEY_A",
        "sk-aaa",
        "Key sk-aaa",
    )
    assert conn.header(conn.pool[1]) == "Key sk-bbb"
    assert conn.key_ids[0] == conn.key_id
    assert [k.split(":")[0] for k in conn.key_ids] == ["FAL_KEY_A", "FAL_KEY_B"]
    assert conn.key_for(conn.key_ids[1]) is conn.pool[1]
    assert conn.key_for("FAL_KEY_C:00000000") is conn.pool[0]
    shown = repr(conn) + str(conn.public())
    assert "sk-aaa" not in shown
    assert "sk-bbb" not in shown
    assert [k["key_id"] for k in conn.public()["keys"]] == list(conn.key_ids)


def test_a_spec_pool_keeps_each_keys_cap() -> None:
    """run: {keys: [...]} gives each key its own cap; one without shares --concurrency."""
    settings = RunSettings().merged(
        {"keys": [{"env": "FAL_KEY_A", "concurrency": 2}, {"env": "FAL_KEY_B"}]}, "spec"
    )
    conn = connect(settings, environ=POOL_ENV)
    assert [(key.env, key.concurrency) for key in conn.pool] == [
        ("FAL_KEY_A", 2),
        ("FAL_KEY_B", None),
    ]
    assert conn.warnings == ()


def test_a_pool_names_every_missing_variable() -> None:
    """Every variable of the pool that holds no key is named at once; nothing quotes a key."""
    with pytest.raises(UsageError) as caught:
        connect(
            RunSettings(api_key_env="FAL_KEY_A,FAL_KEY_B,FAL_KEY_C"), environ={"FAL_KEY_B": "k"}
        )
    assert str(caught.value).startswith(
        "no API key in FAL_KEY_A, FAL_KEY_C: set those environment variables"
    )
    with pytest.raises(UsageError, match="no API key in FAL_KEY_B: set that environment variable"):
        connect(RunSettings(api_key_env="FAL_KEY_A,FAL_KEY_B"), environ={"FAL_KEY_A": "k"})


def test_a_pool_refuses_one_key_twice_and_a_key_file() -> None:
    """Two variables holding the same key, or --api-key-file with a pool, are refused."""
    same = {"FAL_KEY_A": "sk-same", "FAL_KEY_B": "sk-same"}
    with pytest.raises(UsageError, match="FAL_KEY_A and FAL_KEY_B hold the same key"):
        connect(RunSettings(api_key_env="FAL_KEY_A,FAL_KEY_B"), environ=same)
    with pytest.raises(UsageError, match="--api-key-file holds one key"):
        connect(RunSettings(api_key_env="FAL_KEY_A,FAL_KEY_B"), api_key_file="k", environ=POOL_ENV)


def test_caps_above_the_total_are_warned_about() -> None:
    """Caps adding up to more than --concurrency: a warning that the total still holds."""
    keys = [{"env": "FAL_KEY_A", "concurrency": 6}, {"env": "FAL_KEY_B", "concurrency": 6}]
    conn = connect(RunSettings(concurrency=8).merged({"keys": keys}, "spec"), environ=POOL_ENV)
    assert conn.warnings == (
        "the keys' caps add up to 12, and --concurrency 8 caps the run in all: at most 8 jobs "
        "in flight (raise --concurrency to use them all)",
    )


def test_the_emulator_makes_up_a_key_per_variable() -> None:
    """With the emulator, a pool's unset variables get made-up keys, one account each."""
    conn = connect(RunSettings(provider="mock", api_key_env="A,B"), environ={})
    assert len({key.key for key in conn.pool}) == 2


def test_the_last_given_names_the_keys() -> None:
    """--api-key-env replaces a spec's keys, and a spec's keys an api_key_env before them;
    both in one place are refused; a bad name or a name twice is refused."""
    spec = RunSettings().merged({"keys": [{"env": "FAL_KEY_A", "concurrency": 2}]}, "spec")
    flag = spec.merged({"api_key_env": "FAL_KEY_B"}, "command line")
    assert ([k.env for k in flag.key_envs()], flag.keys) == (["FAL_KEY_B"], ())
    back = flag.merged({"keys": [{"env": "FAL_KEY_A"}]}, "spec")
    assert (back.api_key_env, [k.env for k in back.key_envs()]) == (None, ["FAL_KEY_A"])
    for values, problem in [
        ({"keys": [{"env": "A"}], "api_key_env": "B"}, "give either keys or api_key_env"),
        ({"api_key_env": "A,,B"}, "an empty name is not an environment variable name"),
        ({"api_key_env": "A,A"}, "A is named twice"),
        ({"keys": [{"env": "A", "cap": 2}]}, "'cap' is not a field of a key"),
        ({"keys": [{"concurrency": 2}]}, "key 1 needs env"),
        ({"keys": [{"env": "A", "concurrency": 0}]}, "0 must be above zero"),
    ]:
        with pytest.raises(InputError, match=problem):
            RunSettings().merged(values, "command line")


def test_price_list_host_only_for_the_presets_own_api() -> None:
    """fal asks api.fal.ai, the emulator its own base URL, quickrouter nothing, and a base URL
    given by hand (its key may be another host's) nothing either."""
    fal = connect(RunSettings(), environ={"FAL_KEY": "k"})
    assert fal.platform_url == "https://api.fal.ai"
    proxied = connect(RunSettings(base_url="https://proxy.example"), environ={"FAL_KEY": "k"})
    assert proxied.platform_url is None
    mock = connect(RunSettings(provider="mock"), environ={}, base_url="http://127.0.0.1:9")
    assert mock.platform_url == "http://127.0.0.1:9"
    router = connect(RunSettings(provider="quickrouter"), environ={"QUICKROUTER_API_KEY": "t"})
    assert router.platform_url is None


def test_request_log_only_for_the_presets_own_host() -> None:
    """fal reads its request log at api.fal.ai, the emulator at its base URL, quickrouter and
    a fal preset pointed at another host (a proxy, whose key fal must not see) nowhere."""
    fal = {"FAL_KEY": "id:secret"}
    assert connect(RunSettings(), environ=fal).request_log == "https://api.fal.ai"
    proxy = RunSettings(base_url="https://proxy.example")
    assert connect(proxy, environ=fal).request_log is None
    router = connect(RunSettings(provider="quickrouter"), environ={"QUICKROUTER_API_KEY": "t"})
    assert router.request_log is None
    mock = connect(RunSettings(provider="mock"), environ={}, base_url="http://127.0.0.1:9")
    assert mock.request_log == "http://127.0.0.1:9"
