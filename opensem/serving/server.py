"""Running a server: releases resolved and the API key checked before anything starts, models
loaded in the background (/health/ready says when), uvicorn in front, and, when watching, new
releases swapped in as they are published."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from opensem.errors import Location, OpensemError, ServeError, UsageError
from opensem.serving.app import ServerState, create_app
from opensem.serving.config import ServeConfig
from opensem.serving.ops import api_key, serve_in_thread, uvicorn_server
from opensem.serving.pool import ModelPool
from opensem.serving.releases import Release, parse_source, resolve
from opensem.serving.tenancy import Tenancy, owner_of_name, scoped


class Server:
    def __init__(
        self,
        sources: list[str],
        config: ServeConfig,
        cache_dir: Path,
        log: logging.Logger | None = None,
        tenancy: Tenancy | None = None,
    ) -> None:
        self.sources, self.config, self.cache_dir = list(sources), config, cache_dir
        self.log = log or logging.getLogger("opensem.serve")
        self.tenancy = tenancy
        # Refused here, before any model loads, when missing or too short; under accounts each
        # person's own keys are checked instead
        key = api_key(config) if tenancy is None else None
        self.releases: list[Release] = [self._resolve(source) for source in self.sources]
        if tenancy is not None and not sources:
            self._discover()
        self.state = ServerState(
            config, ModelPool(config, self.log), key, self.log, tenancy=tenancy
        )
        self.app = create_app(self.state)
        self.uvicorn: Any = None
        self.url = ""  # set once listening (start)
        self.failure: BaseException | None = None  # why loading failed; the server then stops
        self.stopping = threading.Event()

    def _resolve(self, source: str) -> Release:
        """The release a source names; under accounts, named in the pool by its owner too and
        pulled into its owner's own cache."""
        if self.tenancy is None:
            return resolve(source, self.cache_dir)
        owner = self.tenancy.owner_of(source)
        release = resolve(source, self.cache_dir / owner)
        return replace(release, name=scoped(owner, release.name))

    def _discover(self, active: set[str] | None = None) -> list[Release]:
        """Under accounts, every person's published experts not served yet (added to sources)."""
        assert self.tenancy is not None
        found = []
        for source in self.tenancy.sources(active):
            if source in self.sources:
                continue
            try:
                release = self._resolve(source)
            except UsageError as refused:  # not published yet, or not servable: said once
                self.log.debug("serve: not serving %s: %s", source, refused.message)
                continue
            self.sources.append(source)
            self.releases.append(release)
            found.append(release)
        return found

    def load(self) -> None:
        """Load every release (a name served twice keeps the last); then the server is ready."""
        self.state.pool.expect(self.releases)
        for release in self.releases:
            started = time.monotonic()
            if self.tenancy is not None:  # one person's broken release does not stop everyone's
                self._add_new(release)
                continue
            try:
                self.state.pool.add(release)
            except OpensemError:
                raise
            except Exception as exc:
                raise ServeError(
                    f"cannot load {release.name}: {type(exc).__name__}: {exc}",
                    Location(file=str(release.artifact)),
                    "check the release is whole (`opensem pull` checks its digests) and its base model can be loaded",
                ) from exc
            self.log.info(
                "serve: %s <- %s (%s, lot %s) in %.1f s",
                release.name,
                release.origin,
                release.kind,
                (release.lot or "-")[:12],
                time.monotonic() - started,
            )
        self.state.ready = True
        self.log.info("serve: ready: %s", ", ".join(self.state.pool.names()))

    def watch(self) -> None:
        """Look at every source again each interval; load what was published since and swap it
        in. Under accounts, experts people published since are added too."""
        refused: set[Release] = set()
        while not self.stopping.wait(self.config.watch_interval_s):
            if self.tenancy is not None:
                active = self.tenancy.active()
                self._forget_gone(active)
                for release in self._discover(active):
                    self._add_new(release)
            for index, source in enumerate(self.sources):
                try:
                    fresh = self._resolve(source)
                except (
                    Exception
                ) as exc:  # a registry that is briefly unreachable keeps the old release
                    self.log.warning("serve: cannot look at %s: %s", source, exc)
                    continue
                current = self.releases[index]
                if (fresh.tag, fresh.lot, fresh.artifact) != (
                    current.tag,
                    current.lot,
                    current.artifact,
                ) and fresh not in refused:
                    try:
                        self.state.pool.add(fresh)
                    except (
                        Exception
                    ) as exc:  # a broken new release leaves the old one serving; not tried again
                        refused.add(fresh)
                        self.log.error(
                            "serve: cannot load %s %s, still serving %s: %s",
                            fresh.name,
                            fresh.tag,
                            current.tag,
                            exc,
                        )
                        continue
                    self.releases[index] = fresh

    def _forget_gone(self, active: set[str]) -> None:
        """Under accounts, stop serving experts their owner deleted, and everything of people
        disabled or deleted since (served again if they are enabled again)."""
        for index in reversed(range(len(self.sources))):
            release = self.releases[index]
            where = parse_source(self.sources[index])[1]
            if owner_of_name(release.name) in active and Path(where).exists():
                continue
            self.state.pool.remove(release.name)
            del self.sources[index], self.releases[index]
            self.log.info(
                "serve: %s is no longer served (deleted or its owner disabled)", release.name
            )

    def _add_new(self, release: Release) -> None:
        """Load one person's release; a failure is logged and leaves the others serving."""
        try:
            self.state.pool.add(release)
        except Exception as exc:
            self.log.error("serve: cannot load %s: %s: %s", release.name, type(exc).__name__, exc)
            return
        self.log.info(
            "serve: %s <- %s (lot %s)", release.name, release.origin, (release.lot or "-")[:12]
        )

    def background(self) -> None:
        """Load the models, then watch (when asked), off the serving thread."""

        def run() -> None:
            while (
                self.uvicorn is not None
                and not self.uvicorn.started
                and not self.uvicorn.should_exit
            ):
                time.sleep(0.02)
            if self.uvicorn is not None and self.uvicorn.started:
                self.url = (
                    self.url
                    or f"http://{self.config.host}:{self.uvicorn.servers[0].sockets[0].getsockname()[1]}"
                )
                self.log.info(
                    "serve: listening on %s/v1; loading %d release(s)", self.url, len(self.releases)
                )
            try:
                self.load()
            except Exception as exc:
                self.failure = exc  # reported by run() or wait_ready()
                if self.uvicorn is not None:
                    self.uvicorn.should_exit = True
                return
            if self.config.watch:
                self.watch()

        threading.Thread(target=run, name="opensem-load", daemon=True).start()

    def run(self) -> None:
        """Serve until interrupted (the `opensem serve` command); a release that fails to load stops it."""
        self.uvicorn = self._uvicorn()
        self.background()
        try:
            self.uvicorn.run()
        finally:
            self.close()
        if self.failure is not None:
            raise self.failure

    def _uvicorn(self) -> Any:
        return uvicorn_server(self.app, self.config.host, self.config.port)

    def start(self) -> str:
        """Serve from a background thread and return the base URL once listening (tests, benchmarks)."""
        self.uvicorn = self._uvicorn()
        port = serve_in_thread(self.uvicorn, "opensem-uvicorn")
        self.background()
        self.url = f"http://{self.config.host}:{port}"
        return self.url

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until the models are loaded; StageError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while not self.state.ready:
            if self.failure is not None:
                raise self.failure
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not load its models in time")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop accepting requests, finish what is running and stop the engines."""
        self.stopping.set()
        if self.uvicorn is not None:
            self.uvicorn.should_exit = True
        self.state.pool.close()
