"""Where a webhook may be delivered: a URL checked when it is registered, and its host resolved and checked again
each time it is delivered to, the address connected to being the one checked (so a name that resolves elsewhere
between the check and the connection, DNS rebinding, reaches nothing it should not).

Only `https`; plain `http` only to loopback, and loopback only when the operator allows it (for development). An
address must be globally routable: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local
(169.254/16, fe80::/10), CGNAT (100.64/10), 0/8, multicast, documentation and other reserved ranges are refused,
and so are the IPv6 forms that carry an IPv4 address (mapped ::ffff:0:0/96, compatible ::/96, 6to4 2002::/16, NAT64
64:ff9b::/96 and 64:ff9b:1::/48, Teredo 2001::/32) when the address they carry would be, and site-local fec0::/10.
Hosts and networks the operator allows are taken as they are. The resolver is a seam (`Resolver`): tests check
every rule without opening a connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import yarl

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses the host resolves to, as text.
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_CHARS = 2048
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))  # well-known, local use
_COMPATIBLE = ipaddress.ip_network("::/96")  # IPv4-compatible IPv6 (deprecated, still routed by some stacks)


class TargetRefused(ValueError):
    """A URL a webhook may not be delivered to; the message says why, in words a caller can act on, naming no address
    a host name resolved to (a caller must not learn the service's internal DNS through it); `detail` names them,
    for the operator's log and the tests."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


@dataclass(frozen=True)
class TargetPolicy:
    """What an operator allows beyond the public internet: hosts (exact names, lower case) and networks whose
    addresses are taken as they are, and whether loopback (over plain http too) is allowed, for development."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    loopback: bool = False

    @classmethod
    def parse(cls, allowed: Iterable[str], *, loopback: bool = False) -> TargetPolicy:
        """From an allowlist of hosts and CIDRs (`WEBHOOK_ALLOW`, comma-separated); ValueError for a bad entry."""
        hosts, networks = set(), []
        for entry in (e.strip() for e in allowed):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _is_hostname(entry):
                    raise ValueError(f"{entry!r} is neither a host name nor a network (CIDR)") from None
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), loopback)


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to for it (the one checked)."""

    url: str
    host: str
    port: int
    address: str
    https: bool = field(default=True)


def checked_url(url: str, policy: TargetPolicy) -> SplitResult:
    """A URL as registered: https (http only to loopback, when allowed), a host, no user name or password, no
    fragment, at most MAX_URL_CHARS. Its addresses are checked when it is delivered to (`resolve`)."""
    if len(url) > MAX_URL_CHARS:
        raise TargetRefused(f"is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"is not a URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("must be an https:// URL with a host, such as https://example.com/hooks/otari")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry a user name or password: put a secret in the path or query if needed")
    if parts.fragment:
        raise TargetRefused("must not have a #fragment (it is never sent)")
    if port == 0:
        raise TargetRefused("must not name port 0")
    if not _is_address(parts.hostname) and not _is_hostname(ascii_host(url)):
        raise TargetRefused(f"names {parts.hostname!r}, which is not a host name")
    if parts.scheme == "http" and not (policy.loopback and _is_loopback_name(parts.hostname)):
        raise TargetRefused(
            "must be https://; plain http:// only to loopback (localhost, 127.0.0.1, [::1]) where the operator "
            "allows it, for development"
        )
    return parts


async def resolve(url: str, policy: TargetPolicy, resolver: Resolver | None = None) -> Target:
    """The URL's host resolved, and the address to connect to: the first that may be reached. TargetRefused when
    none may (every address is named in the message), or the host does not resolve."""
    parts = checked_url(url, policy)
    host = ascii_host(url) or (parts.hostname or "").rstrip(".")  # (resolved as it will be sent)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = await (resolver or system_resolver)(host, port)
        except (OSError, UnicodeError) as exc:  # (UnicodeError: a name no resolver takes)
            raise TargetRefused(_UNREACHABLE.format(host=host), f"{host} does not resolve: {exc}") from None
    refused = []
    for text in found:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # (a scope id, fe80::1%eth0, is no part of it)
        why = refusal(address, host, policy)
        if why is None:
            return Target(url, host, port, str(address), https)
        refused.append(f"{address} ({why})")
    detail = f"{host} reaches no address a webhook may be sent to: {', '.join(refused) or 'it has none'}"
    if literal is not None:  # (the caller's own address: said as it is)
        raise TargetRefused(detail)
    # One answer for every name that fails, whatever the service's resolver said: a caller learns nothing of its DNS.
    raise TargetRefused(_UNREACHABLE.format(host=host), detail)


# Why a host name is refused, as the caller is told (the detail, for the operator's log, says which).
_UNREACHABLE = (
    "names a host ({host}) that reaches no address a webhook may be sent to: it does not resolve, or only to "
    "addresses that are not public and not on the operator's allowlist (WEBHOOK_ALLOW)"
)


def refusal(address: Address, host: str, policy: TargetPolicy) -> str | None:
    """Why a webhook may not go to `address` (reached by the name `host`), or None when it may."""
    if host.lower() in policy.hosts or any(address in network for network in policy.networks):
        return None
    if address.is_loopback or _carried(address, lambda a: a.is_loopback):
        return None if policy.loopback else "loopback"
    if isinstance(address, ipaddress.IPv6Address):
        carried = _embedded(address)
        if carried is not None:
            why = refusal(carried, host, policy)
            return None if why is None else f"carries {carried}: {why}"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if address in _CGNAT:
        return "shared address space (CGNAT, 100.64.0.0/10)"
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if not address.is_global or address.is_reserved or site_local:
        return "private or reserved"
    return None


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: mapped, 6to4, NAT64 or Teredo (the client's)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in prefix for prefix in _NAT64) or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _carried(address: Address, test: Callable[[Address], bool]) -> bool:
    carried = _embedded(address) if isinstance(address, ipaddress.IPv6Address) else None
    return carried is not None and test(carried)


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system's resolver (off the event loop, as asyncio does it)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def redacted(url: str) -> str:
    """A URL as it may be logged: without its query string, user name or password (they may carry secrets), and its
    path as `/…` (so may it: a token in the path, as Slack's hooks have it)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}{port}{'/…' if parts.path.strip('/') or parts.query else '/'}"


def _is_loopback_name(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def ascii_host(url: str) -> str:
    """The URL's host as it is sent (an internationalized name in its xn-- form, by IDNA 2008, as aiohttp sends it),
    lower case, without a trailing dot; "" for a host that has no such form."""
    try:
        return (yarl.URL(url).raw_host or "").rstrip(".")
    except (ValueError, UnicodeError):
        return ""


def _is_hostname(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return (
        all(label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() for label in labels)
        and len(entry) <= 253
    )
