"""Where a webhook may go (#32): the URL as registered, and each address its host resolves to, checked through the
resolver seam: no test opens a connection, to any address."""

from __future__ import annotations

import ipaddress

import pytest

from otari_batch_grpc.server.webhooks.targets import TargetPolicy, TargetRefused, checked_url, redacted, resolve

PUBLIC = TargetPolicy()
DEVELOPMENT = TargetPolicy(loopback=True)


class resolving:  # (lower case: read as a call, resolving("10.0.0.1"))
    """A resolver that answers `addresses` for any host, and records what it was asked."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.addresses


async def test_a_public_address_is_the_one_connected_to() -> None:
    resolver = resolving("93.184.216.34", "2606:2800:220:1::1")
    target = await resolve("https://hooks.example.com:8443/otari?token=s3cret", PUBLIC, resolver)
    assert (target.host, target.port, target.address, target.https) == (
        "hooks.example.com",
        8443,
        "93.184.216.34",
        True,
    )
    assert resolver.asked == [("hooks.example.com", 8443)]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
        ("fd12:3456::1", "private"), ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"), ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"), ("0.0.0.0", "reserved"),
        ("0.1.2.3", "reserved"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"), ("2001:db8::1", "reserved"), ("::", "reserved"),
        # IPv6 forms that carry an IPv4 address: as refused as the address they carry
        ("::ffff:10.0.0.1", "carries 10.0.0.1"), ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "carries 169.254.169.254"), ("::ffff:100.64.0.1", "CGNAT"),
        ("2002:a00:1::1", "carries 10.0.0.1"), ("64:ff9b::a9fe:a9fe", "carries 169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "carries 10.0.0.1"),
        ("64:ff9b:1::a9fe:a9fe", "carries 169.254.169.254"), ("::a9fe:a9fe", "carries 169.254.169.254"),
        ("::7f00:1", "loopback"), ("fec0::1", "private or reserved"), ("240.0.0.1", "private or reserved"),
    ],
)  # fmt: skip
async def test_an_address_that_is_not_public_is_refused(address: str, why: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        await resolve("https://hooks.example.com/otari", PUBLIC, resolving(address))
    assert str(ipaddress.ip_address(address)) in refused.value.detail and why in refused.value.detail
    # The caller is told why in general, not what the service's resolver answered for the name.
    assert str(ipaddress.ip_address(address)) not in str(refused.value) and "not public" in str(refused.value)


async def test_one_public_address_among_refused_ones_is_chosen_and_a_literal_is_checked_as_it_is() -> None:
    target = await resolve("https://h.example/", PUBLIC, resolving("10.0.0.1", "8.8.8.8"))
    assert target.address == "8.8.8.8"
    with pytest.raises(TargetRefused, match=r"169\.254\.169\.254"):
        await resolve("https://169.254.169.254/latest/meta-data", PUBLIC)  # no resolver: nothing is looked up
    with pytest.raises(TargetRefused, match=r"carries 10\.0\.0\.1"):
        await resolve("https://[::ffff:a00:1]/", PUBLIC)


async def test_what_the_operator_allows_is_taken_as_it_is() -> None:
    policy = TargetPolicy.parse(["10.20.0.0/16", "receiver.internal", " ", "fd00::/8"])
    assert (await resolve("https://a.example/", policy, resolving("10.20.3.4"))).address == "10.20.3.4"
    assert (await resolve("https://receiver.internal/", policy, resolving("192.168.9.9"))).address == "192.168.9.9"
    assert (await resolve("https://a.example/", policy, resolving("fd00::5"))).address == "fd00::5"
    with pytest.raises(TargetRefused):
        await resolve("https://a.example/", policy, resolving("10.21.0.1"))
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        TargetPolicy.parse(["10.0.0.0/33x"])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/", "must be https://"),
        ("http://127.0.0.1:8080/", "must be https://"),  # loopback not allowed here
        ("ftp://hooks.example.com/", "https:// URL with a host"),
        ("https:///path", "https:// URL with a host"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://hooks.example.com:0/", "port 0"),
        ("https://hooks.example.com:99999/", "is not a URL"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than 2048"),
        ("https://a..b.example/", "not a host name"),
        ("https://" + "a" * 64 + ".example/", "not a host name"),
        ("https://a\u200db.example/", "not a host name"),  # (a zero-width joiner: no IDNA 2008 form)
    ],
)
def test_a_url_that_cannot_be_one_is_refused_as_registered(url: str, why: str) -> None:
    with pytest.raises(TargetRefused, match=why):
        checked_url(url, PUBLIC)


async def test_loopback_over_http_only_where_the_operator_allows_it() -> None:
    target = await resolve("http://localhost:8080/hook", DEVELOPMENT, resolving("127.0.0.1"))
    assert (target.address, target.port, target.https) == ("127.0.0.1", 8080, False)
    with pytest.raises(TargetRefused, match="must be https://"):  # http to anything else, never
        checked_url("http://hooks.example.com/", DEVELOPMENT)
    with pytest.raises(TargetRefused) as refused:  # loopback allowed is no more than loopback
        await resolve("https://hooks.example.com/", DEVELOPMENT, resolving("10.0.0.1"))
    assert "private" in refused.value.detail
    with pytest.raises(TargetRefused) as refused:  # a name that resolves to loopback, where not allowed
        await resolve("https://sneaky.example.com/", PUBLIC, resolving("127.0.0.1"))
    assert "loopback" in refused.value.detail


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    async def failing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TargetRefused, match="does not resolve"):
        await resolve("https://nowhere.example/", PUBLIC, failing)
    with pytest.raises(TargetRefused, match="no address"):
        await resolve("https://nowhere.example/", PUBLIC, resolving())


def test_a_url_is_logged_without_its_query_or_credentials() -> None:
    assert redacted("https://hooks.example.com:8443/a/b?token=s3cret") == "https://hooks.example.com:8443/…"
    assert redacted("https://u:p@[::1]/x") == "https://[::1]/…"
    assert redacted("https://hooks.slack.example/services/T0/B0/s3cret") == "https://hooks.slack.example/…"
    assert redacted("https://h.example") == "https://h.example/"
    assert "s3cret" not in redacted("https://h.example:99999/?s3cret")


@pytest.mark.parametrize(
    "url",
    [
        "https://Hooks.Example.COM:8443/a",
        "https://[2606:4700::1111]/hook",
        "https://bücher.example/hook",
        "https://xn--bcher-kva.example/hook",
        "https://under_score.example/",
        "https://hooks.example.com./",
    ],
)
def test_a_url_a_receiver_may_well_have_is_taken(url: str) -> None:
    assert checked_url(url, PUBLIC).hostname
