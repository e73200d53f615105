"""Endpoints of an expert: a circuit breaker each, and the choice among replicas.

An endpoint's circuit is closed while it answers. After `failures_to_open` failures in a row
(connection refused, timeout, 5xx) it opens: no request is sent there for `open_for_s` seconds.
Then one request may probe it (half open): success closes the circuit, failure opens it again.
Among the endpoints that may take a request, the one with the fewest requests in flight gets it,
ties going round-robin.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Endpoint:
    url: str
    failures_to_open: int
    open_for_s: float
    state: str = "closed"  # closed, open or half_open
    failures: int = 0  # in a row
    opened_at: float = 0.0
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    last_error: str | None = None

    def available(self, now: float) -> bool:
        """Whether the endpoint may take a request now (an open circuit half-opens after its pause)."""
        if self.state == "open" and now - self.opened_at >= self.open_for_s:
            self.state = "half_open"  # one probe may go
            return True
        return self.state == "closed" or (self.state == "half_open" and self.in_flight == 0)

    def health(self) -> dict[str, object]:
        """The endpoint's state for /health."""
        return {
            "url": self.url,
            "state": self.state,
            "in_flight": self.in_flight,
            "requests": self.requests,
            "errors": self.errors,
            "last_error": self.last_error,
        }


@dataclass
class Replicas:
    """The endpoints serving one expert."""

    endpoints: list[Endpoint]
    lock: threading.Lock = field(default_factory=threading.Lock)
    turn: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def of(cls, urls: list[str], failures_to_open: int, open_for_s: float) -> Replicas:
        """Replicas at urls, each with its own circuit."""
        return cls([Endpoint(url, failures_to_open, open_for_s) for url in urls])

    def take(self, tried: set[str]) -> Endpoint | None:
        """An endpoint for the next request (not one already tried for it), marked in flight; None if
        none may take it."""
        with self.lock:
            now = time.monotonic()
            ready = [e for e in self.endpoints if e.url not in tried and e.available(now)]
            if not ready:
                return None
            fewest = min(e.in_flight for e in ready)
            least = [e for e in ready if e.in_flight == fewest]
            chosen = least[next(self.turn) % len(least)]
            chosen.in_flight += 1
            chosen.requests += 1
            return chosen

    def done(self, endpoint: Endpoint, error: str | None = None) -> None:
        """Record how a request went: an error counts toward opening the circuit."""
        with self.lock:
            endpoint.in_flight -= 1
            if error is None:
                endpoint.state, endpoint.failures = "closed", 0
                return
            endpoint.errors += 1
            endpoint.failures += 1
            endpoint.last_error = error
            if endpoint.state == "half_open" or endpoint.failures >= endpoint.failures_to_open:
                endpoint.state, endpoint.opened_at = "open", time.monotonic()

    def up(self) -> bool:
        """Whether any replica's circuit is not open."""
        return any(e.state != "open" for e in self.endpoints)

    def in_flight(self) -> int:
        """Requests in flight over every replica."""
        return sum(e.in_flight for e in self.endpoints)
