"""Circuit breakers and replicas: a failing endpoint is cut off, probed back, and traffic spreads."""

from __future__ import annotations

import time

from opensem.routing.breaker import Replicas


def test_failures_open_the_circuit_and_a_probe_closes_it() -> None:
    replicas = Replicas.of(["http://a", "http://b"], failures_to_open=2, open_for_s=0.2)
    a = replicas.endpoints[0]
    for _ in range(2):
        taken = replicas.take({"http://b"})
        assert taken is a
        replicas.done(taken, "APIConnectionError")
    assert a.state == "open" and a.errors == 2 and a.last_error == "APIConnectionError"
    assert replicas.take({"http://b"}) is None  # open: not even tried
    assert replicas.take(set()).url == "http://b" and replicas.up()
    time.sleep(0.25)
    probe = replicas.take({"http://b"})
    assert probe is a and a.state == "half_open"
    assert replicas.take({"http://b"}) is None  # one probe at a time
    replicas.done(probe, "HTTP 500")
    assert a.state == "open"  # a failed probe opens it again at once
    time.sleep(0.25)
    probe = replicas.take({"http://b"})
    replicas.done(probe)
    assert a.state == "closed" and a.failures == 0


def test_requests_go_to_the_least_busy_replica_in_turn() -> None:
    replicas = Replicas.of(["http://a", "http://b", "http://c"], failures_to_open=3, open_for_s=30)
    first = [replicas.take(set()) for _ in range(3)]
    assert {e.url for e in first} == {"http://a", "http://b", "http://c"}  # each busy once
    replicas.done(first[1])
    assert replicas.take(set()) is first[1]  # the only idle one
    for endpoint in (first[0], first[1], first[2]):
        replicas.done(endpoint)
    urls = [replicas.take(set()).url for _ in range(3)]
    assert sorted(urls) == ["http://a", "http://b", "http://c"]
    assert replicas.in_flight() == 3
