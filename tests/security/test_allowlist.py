"""``--allow-cidr`` and ``--trusted-proxy``: who the client is, and whether it may post."""

from __future__ import annotations

import base64
import ipaddress
import logging
from collections.abc import Awaitable, Callable

import pytest

from exporter.cli.flags import parse_settings
from exporter.security.allowlist import SourcePolicy, client_address, parse_address, parse_network
from tests.helpers import Exporter, event, labels

Start = Callable[..., Awaitable[Exporter]]
PROXIES = (parse_network("10.0.0.0/8"), parse_network("192.0.2.7"))


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(("peer", "xff", "client"), [
    # A peer that is not a trusted proxy is the client; its header is ignored.
    ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
    ("203.0.113.5", [], "203.0.113.5"),
    # A trusted proxy vouches for the address to its left.
    ("10.1.1.1", ["198.51.100.1"], "198.51.100.1"),
    # Right-most untrusted wins: the left part of the header is the client's to forge.
    ("10.1.1.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
    ("10.1.1.1", ["6.6.6.6, 198.51.100.1, 10.2.2.2"], "198.51.100.1"),
    # Several header lines read as one list, in order.
    ("10.1.1.1", ["6.6.6.6", "198.51.100.1, 192.0.2.7"], "198.51.100.1"),
    # Only proxies all the way: the left-most proxy is the best answer there is.
    ("10.1.1.1", ["10.3.3.3"], "10.3.3.3"),
    # A trusted proxy with no header: the proxy itself.
    ("10.1.1.1", [], "10.1.1.1"),
    # Garbage from a trusted proxy, or no peer at all: unknown.
    ("10.1.1.1", ["not-an-ip"], None),
    (None, ["198.51.100.1"], None),
    ("", [], None),
    # Ports, brackets and IPv4-mapped IPv6 are understood.
    ("::ffff:10.1.1.1", ["198.51.100.1:4711"], "198.51.100.1"),
    ("10.1.1.1", ["[2001:db8::1]:443"], "2001:db8::1"),
    ("10.1.1.1", [" 198.51.100.1 ,, "], "198.51.100.1"),
])
def test_client_address(peer: str | None, xff: list[str], client: str | None) -> None:
    assert client_address(peer, xff, PROXIES) == (ip(client) if client else None)


def test_parse_address() -> None:
    assert parse_address("::ffff:192.0.2.1") == ip("192.0.2.1")
    assert parse_address("fe80::1%eth0") == ip("fe80::1")
    assert parse_address("unknown") is None
    assert parse_address("") is None


def test_policy_admits() -> None:
    policy = SourcePolicy(allowed=(parse_network("198.51.100.0/24"),
                                   parse_network("2001:db8::/32")))
    assert policy.admits(ip("198.51.100.9")) and policy.admits(ip("2001:db8::5"))
    assert not policy.admits(ip("198.51.101.1"))
    assert not policy.admits(None)
    assert SourcePolicy().admits(None)  # no allow-list: everyone


async def test_webhook_outside_the_allow_list_is_forbidden(start_exporter: Start,
                                                           caplog: pytest.LogCaptureFixture,
                                                           ) -> None:
    caplog.set_level(logging.INFO)
    # The test client connects from 127.0.0.1.
    exp = await start_exporter("--allow-cidr", "198.51.100.0/24", "--auth-token", "tok")
    status, body = await exp.post(event(1), headers={"Authorization": "Bearer tok"})
    assert (status, body["status"]) == (403, "forbidden")
    assert "not allowed" in body["error"]
    assert "outside --allow-cidr" in caplog.text
    # X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
    status, _ = await exp.post(event(2), headers={"Authorization": "Bearer tok",
                                                  "X-Forwarded-For": "198.51.100.1"})
    assert status == 403
    # Scrapes and health checks are not the allow-list's business.
    assert (await exp.client.get("/healthz")).status == 200
    m = await exp.metrics()
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="forbidden")] == 2
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="accepted")] == 0


async def test_allowed_directly_and_through_a_trusted_proxy(start_exporter: Start) -> None:
    direct = await start_exporter("--allow-cidr", "127.0.0.0/8")
    assert (await direct.post(event(1)))[0] == 200
    await direct.client.close()
    proxied = await start_exporter("--allow-cidr", "198.51.100.0/24",
                                   "--trusted-proxy", "127.0.0.1")
    assert (await proxied.post(event(2), headers={"X-Forwarded-For": "198.51.100.1"}))[0] == 200
    forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    assert (await proxied.post(event(3), headers=forged))[0] == 403
    assert (await proxied.post(event(4)))[0] == 403  # the proxy itself is not allowed


async def test_token_endpoint_is_behind_the_allow_list(start_exporter: Start) -> None:
    exp = await start_exporter("--allow-cidr", "198.51.100.0/24",
                               "--oauth-client-id", "ct", "--oauth-client-secret", "sec")
    auth = {"Authorization": "Basic " + base64.b64encode(b"ct:sec").decode()}
    resp = await exp.client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 headers=auth)
    assert resp.status == 403
    m = await exp.metrics()
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome="forbidden")] == 1


def test_flags_and_environment() -> None:
    s = parse_settings(["--allow-cidr", "10.0.0.0/8", "--allow-cidr", "2001:db8::/32"], env={
        "EXPORTER_ALLOW_CIDR": "192.0.2.0/24", "EXPORTER_TRUSTED_PROXY": "10.0.0.1, 10.0.0.2"})
    assert s.auth.allow_cidrs == (parse_network("10.0.0.0/8"), parse_network("2001:db8::/32"))
    assert s.auth.trusted_proxies == (parse_network("10.0.0.1"), parse_network("10.0.0.2"))
    s = parse_settings([], env={"EXPORTER_ALLOW_CIDR": "192.0.2.0/24,198.51.100.0/24"})
    assert len(s.auth.allow_cidrs) == 2 and s.auth.trusted_proxies == ()


@pytest.mark.parametrize(("args", "env"), [
    (["--allow-cidr", "10.0.0.1/8"], {}),  # host bits set: probably a typo
    (["--trusted-proxy", "nonsense"], {}),
    ([], {"EXPORTER_ALLOW_CIDR": "10.0.0.0/8,300.1.1.1"}),
])
def test_bad_cidrs_stop_the_start(args: list[str], env: dict[str, str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(args, env=env)
    assert "invalid CIDR" in capsys.readouterr().err
