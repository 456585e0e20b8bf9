"""Which proxy a URL goes through, what messages show of it, and which CAs are trusted."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
import trustme

from batchgen.api.network import Network, check_ca_bundle
from batchgen.errors import UsageError


def test_proxy_per_scheme_lower_case_first() -> None:
    """https URLs use HTTPS_PROXY, http ones HTTP_PROXY; the lower-case name wins; ALL_PROXY
    stands in for a scheme without its own."""
    net = Network.from_env(
        {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2", "ALL_PROXY": "all:3"}
    )
    https = net.proxy_for("https://queue.fal.run/x")
    http = net.proxy_for("http://files.example.com/v.mp4")
    assert https is not None
    assert http is not None
    assert (https.url, https.variable) == ("http://low:1", "HTTPS_PROXY")
    assert (http.url, http.variable) == ("http://all:3", "ALL_PROXY")
    assert Network.from_env({}).proxy_for("https://queue.fal.run/x") is None


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("*", "https://queue.fal.run/", True),
        ("fal.run", "https://queue.fal.run/", True),
        (".fal.run", "https://queue.fal.run/", True),
        ("fal.run", "https://notfal.run/", False),
        ("queue.fal.run:443", "https://queue.fal.run/", True),
        ("queue.fal.run:8443", "https://queue.fal.run/", False),
        ("10.0.0.0/8", "https://10.2.3.4/", True),
        ("10.0.0.0/8", "https://11.2.3.4/", False),
        ("::1", "https://[::1]:9000/", True),
        ("other.com, FAL.RUN", "https://queue.fal.run/", True),
    ],
)
def test_no_proxy_entries(no_proxy: str, url: str, direct: bool) -> None:
    """NO_PROXY names hosts (and their subdomains), host:port, addresses and networks."""
    net = Network.from_env({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy})
    assert (net.proxy_for(url) is None) is direct


def test_credentials_go_to_the_proxy_only_and_are_never_shown() -> None:
    """A proxy URL's user:password become its Proxy-Authorization; messages and the run's
    log show the proxy without them."""
    net = Network.from_env({"HTTPS_PROXY": "http://ann:s%40cret@proxy:3128"})
    proxy = net.proxy_for("https://queue.fal.run/")
    assert proxy is not None
    assert proxy.authorization == "Basic " + base64.b64encode(b"ann:s@cret").decode()
    shown = [str(proxy), repr(proxy), net.route("https://queue.fal.run"), str(net.public())]
    assert all("cret" not in text and "ann" not in text for text in shown), shown
    via = " through the proxy http://proxy:3128 (HTTPS_PROXY)"
    assert net.route("https://queue.fal.run") == via


def test_route_names_a_bypass() -> None:
    """A host NO_PROXY exempts is said to be reached directly; without proxies, nothing."""
    net = Network.from_env({"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "fal.run"})
    assert net.route("https://queue.fal.run") == " directly (NO_PROXY)"
    assert Network.from_env({}).route("https://queue.fal.run") == ""


@pytest.mark.parametrize("value", ["ftp://proxy:21", "http://", "http://proxy:notaport"])
def test_a_proxy_that_cannot_be_one_is_refused(value: str) -> None:
    """A proxy variable naming no usable proxy is a usage error naming the variable, with
    no credential quoted."""
    with pytest.raises(UsageError) as caught:
        Network.from_env({"HTTP_PROXY": value.replace("//", "//u:topsecret@", 1)})
    assert "HTTP_PROXY=" in str(caught.value)
    assert "topsecret" not in str(caught.value)


def test_ca_bundle_is_trusted_beside_the_system(tmp_path: Path) -> None:
    """--ca-bundle adds its CA to the system's; a file that is no PEM bundle is refused."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    plain = Network.from_env({}).ssl_context().get_ca_certs()
    extra = Network.from_env({}, ca_bundle=str(bundle)).ssl_context().get_ca_certs()
    assert len(extra) == len(plain) + 1
    (tmp_path / "notes.txt").write_text("not a certificate\n", encoding="utf-8")
    for path, words in (
        (tmp_path / "notes.txt", "holds no PEM certificate"),
        (tmp_path / "missing.pem", "no such file"),
        (tmp_path, "is a folder"),
    ):
        with pytest.raises(UsageError, match=words):
            check_ca_bundle(str(path))


def test_ssl_cert_file_replaces_the_system_cas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_FILE names the CAs trusted, as OpenSSL reads it, whatever was set before."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = Network.from_env({}).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1
