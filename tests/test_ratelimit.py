"""Token buckets: burst, refill, per-key isolation, headers."""

from servicegate.ratelimit import TokenBuckets


def test_burst_then_refill():
    buckets = TokenBuckets(3, 3.0)  # one token per second
    decisions = [buckets.take("a", now=100.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[3].retry_after == 1 and decisions[3].remaining == 0
    assert buckets.take("a", now=100.5).allowed is False
    assert buckets.take("a", now=101.01).allowed is True
    assert buckets.take("b", now=101.01).remaining == 2


def test_headers():
    buckets = TokenBuckets(10, 60.0)
    decision = buckets.take("k", now=0.0)
    headers = decision.headers()
    assert headers["RateLimit-Limit"] == "10" and headers["RateLimit-Remaining"] == "9"
    assert headers["RateLimit-Policy"] == "10;w=60" and "Retry-After" not in headers
    assert headers["RateLimit-Reset"] == "6"


def test_a_token_given_back_is_there_again():
    buckets = TokenBuckets(2, 10.0)
    assert buckets.take("k", now=0.0).allowed and buckets.take("k", now=0.0).allowed
    assert not buckets.take("k", now=0.0).allowed
    buckets.give_back("k")
    assert buckets.take("k", now=0.0).allowed
    buckets.give_back("k")
    buckets.give_back("k")
    buckets.give_back("k")  # never above the capacity
    assert [buckets.take("k", now=0.0).allowed for _ in range(3)] == [True, True, False]
    buckets.give_back("unknown")  # nothing taken, nothing to give back
