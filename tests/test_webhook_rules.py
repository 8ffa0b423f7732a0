"""Parsers and rules behind webhooks: URL/SSRF checks, Retry-After, the retry schedule."""

import ipaddress
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from servicegate.egress import UnsafeURL, judge, target
from servicegate.webhooks.catalog import REFERENCE_EVENTS, EventCatalog
from servicegate.webhooks.policy import next_delay, parse_retry_after
from servicegate.webhooks.targets import (
    TargetRefused,
    check_target,
    literal_host,
    refusal,
    validate_url,
)

PRIVATE_NETS = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "fc00::/7", "fe80::/10", "::1/128")]


@given(st.sampled_from(PRIVATE_NETS), st.integers(min_value=0))
def test_every_address_of_private_ranges_is_refused(net, n):
    address = net[n % net.num_addresses]
    assert refusal(str(address)) is not None
    if address.version == 4:
        assert refusal(f"::ffff:{address}") is not None


@given(st.ip_addresses())
def test_only_global_unicast_addresses_pass(address):
    if refusal(str(address)) is None:
        assert address.is_global and not address.is_multicast and not address.is_reserved
    if not address.is_global or address.is_multicast:
        assert refusal(str(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert refusal(address) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"])
def test_metadata_addresses(address):
    assert "metadata" in refusal(address)


@given(st.text(max_size=300))
def test_validate_url_never_crashes_and_only_accepts_http(text):
    try:
        url = validate_url(text, allow_private=True)
    except ValueError:
        return
    assert url.lower().startswith(("http://", "https://"))


@pytest.mark.parametrize("url", ["http://[::1]:8080/x", "https://10.0.0.1/", "http://0.0.0.0/",
                                 "http://127.1.2.3:9/", "http://[fe80::1%25eth0]/",
                                 # spellings the system resolver reads as IPv4 addresses
                                 "http://127.1/", "http://0x7f000001/", "http://2130706433/",
                                 "http://0177.0.0.1/", "http://0/", "http://10.0x1.2/",
                                 "http://0xA9.0xFE.0xA9.0xFE/latest", "http://127.0.0.1./"])
def test_private_literals_refused_unless_allowed(url):
    with pytest.raises(ValueError):
        validate_url(url, allow_private=False)
    assert validate_url(url, allow_private=True) == url


# Spellings of digits and dots that IDNA (UTS-46) maps to ASCII ones, as yarl does for the client.
_DIGITS = {d: [d, chr(0xFF10 + int(d)), "⓪①②③④⑤⑥⑦⑧⑨"[int(d)]] for d in "0123456789"}
_DOTS = [".", "。", "．", "｡"]  # noqa: RUF001
_PRIVATE_V4 = [n for n in PRIVATE_NETS if n.version == 4] + [
    ipaddress.ip_network("169.254.169.254/32"), ipaddress.ip_network("100.100.100.200/32")]


@st.composite
def private_hosts(draw):
    """A non-public IPv4 address spelled as an attacker might: Unicode digits and full stops,
    per-part decimal/octal/hex, the whole address as one integer, a trailing dot."""
    net = draw(st.sampled_from(_PRIVATE_V4))
    address = net[draw(st.integers(min_value=0)) % net.num_addresses]

    def unicode_digits(text):
        return "".join(draw(st.sampled_from(_DIGITS[ch])) if ch in _DIGITS else ch for ch in text)

    def number(value):
        form = draw(st.sampled_from(["dec", "oct", "hex"]))
        if form == "oct" and value:
            return "0" + format(value, "o")
        if form == "hex":
            digits = "".join(draw(st.sampled_from([c, c.upper()])) for c in format(value, "x"))
            return draw(st.sampled_from(["0x", "0X", "０ｘ"])) + digits  # noqa: RUF001
        return str(value)

    if draw(st.booleans()):
        text = draw(st.sampled_from(_DOTS)).join(
            unicode_digits(number(part)) for part in address.packed)
    else:
        text = unicode_digits(number(int(address)))
    if draw(st.booleans()):
        text += draw(st.sampled_from(_DOTS))
    return address, text


@given(private_hosts(), st.sampled_from(["", ":8080"]))
def test_unicode_and_numeric_spellings_of_private_addresses_are_refused(spelled, port):
    address, host = spelled
    url = f"http://{host}{port}/x"
    with pytest.raises(ValueError, match="private networks are not allowed"):
        validate_url(url, allow_private=False)
    # and the delivery-time check reads the same host: never sent
    with pytest.raises(TargetRefused):
        check_target(url, allow_private=False)
    assert literal_host(str(address)) == str(address)


@pytest.mark.parametrize("host", ["localhost", "LocalHost", "ＬＯＣＡＬＨＯＳＴ", "localhost.",  # noqa: RUF001
                                  "localhost。", "api.localhost", "[::1]", "[0:0:0:0:0:0:0:1]",
                                  "[::ffff:127.0.0.1]"])
def test_local_names_in_any_spelling_are_refused(host):
    with pytest.raises(ValueError, match="private networks are not allowed"):
        validate_url(f"http://{host}/x", allow_private=False)


@pytest.mark.parametrize("url, says", [
    ("http://user:pass@example.com/x", "user info"),
    ("http://user@example.com/x", "user info"),
    ("http://example.com\\@127.0.0.1/x", "backslash"),
    ("http://example.com/a\\b", "backslash"),
    ("http://%31%32%37.0.0.1/x", "not a valid host name"),
    ("http://a..b/x", "not a valid host name"),
    ("http://xn--/x", "not a valid host name"),
])
def test_user_info_backslashes_and_unreadable_hosts_are_refused(url, says):
    for allow in (False, True):
        with pytest.raises(ValueError, match=says):
            validate_url(url, allow_private=allow)


@pytest.mark.parametrize("url", ["https://ｅｘａｍｐｌｅ.com/hook", "https://EXAMPLE.com./hook",  # noqa: RUF001
                                 "https://bücher.example/hook", "http://93.184.215.14:8080/"])
def test_public_hosts_in_any_spelling_pass(url):
    assert validate_url(url, allow_private=False) == url
    check_target(url, allow_private=False)


@given(st.text(max_size=60), st.sampled_from(["", ":80", ":x", ":99999"]))
def test_any_host_is_read_or_refused_never_crashes(host, port):
    """What the http action does with a host a template rendered: a URL to send, or a
    refusal (a 400), never another exception (a 500)."""
    readings: list = [f"http://{host}{port}/x"]
    try:  # as the action parses the URL it assembled
        readings.append(URL(f"http://{host}{port}/x", encoded=True))
    except ValueError:
        pass
    for raw in readings:
        try:
            judge(target(raw))
        except (UnsafeURL, TargetRefused):
            pass


@given(st.integers(min_value=0, max_value=10**9))
def test_retry_after_seconds(seconds):
    assert parse_retry_after(str(seconds)) == min(seconds, 86_400)


def test_retry_after_http_date_and_garbage():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True),
                             now=now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(days=1), usegmt=True), now=now) == 0
    for garbage in (None, "", "soon", "-5", "1.5e9"):
        assert parse_retry_after(garbage) is None


@given(st.lists(st.floats(min_value=0, max_value=1e5), min_size=1, max_size=10),
       st.integers(min_value=0, max_value=20), st.floats(min_value=0, max_value=1),
       st.none() | st.floats(min_value=0, max_value=86_400))
def test_next_delay_follows_the_schedule(schedule, attempts, jitter, retry_after):
    budget = len(schedule)
    delay = next_delay(schedule, attempts, budget, jitter=jitter, retry_after=retry_after)
    if attempts >= budget:
        assert delay is None
        return
    base = schedule[attempts]
    assert delay >= (retry_after or 0)
    assert delay <= max(base * (1 + jitter), retry_after or 0) + 1e-6
    assert delay >= base * (1 - jitter) - 1e-6


def test_catalog_normalises_and_guards_gateway_events():
    catalog = EventCatalog(["OrderShipped", "payment"])
    assert catalog.normalise(" DebtInsert ") == "debtinsert"
    assert catalog.names[-1] == "ordershipped" and len(catalog.names) == len(REFERENCE_EVENTS) + 1
    with pytest.raises(ValueError, match="unknown event"):
        catalog.normalise("nosuch")
    with pytest.raises(ValueError, match="gateway itself"):
        catalog.publishable("appsrvstartup")
    assert catalog.publishable("payment") == "payment"


@given(st.integers(0, 2**32 - 1), st.sampled_from(["int", "hex", "dotted-octal", "a.b"]))
def test_numeric_hosts_are_read_as_the_system_resolver_reads_them(n, spelling):
    """However an IPv4 address is spelled, it is checked as the address (127.1 is 127.0.0.1)."""
    address = ipaddress.IPv4Address(n)
    octets = address.packed
    host = {"int": str(n), "hex": hex(n),
            "dotted-octal": ".".join(f"0{o:o}" for o in octets),
            "a.b": f"{octets[0]}.{n & 0xFFFFFF}"}[spelling]
    assert literal_host(host) == str(address)
    assert (refusal(literal_host(host)) is None) == (refusal(str(address)) is None)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "999.1.1.1", "0x1g", "a1.b2"])
def test_names_are_not_addresses(host):
    assert literal_host(host) is None
