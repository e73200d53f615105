"""Running the router: the registry read, the classifier built (and trained on the experts' golden
knowledge), experts without an endpoint served in this process by an `opensem serve` server on a
loopback port, then uvicorn in front."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from opensem.errors import UsageError
from opensem.routing.classifiers import build_classifier
from opensem.routing.config import RouteServeConfig
from opensem.routing.registry import Expert, ExpertRegistry
from opensem.serving.ops import api_key, serve_in_thread, uvicorn_server

LOCAL_KEY_ENV = (
    "OPENSEM_ROUTER_LOCAL_KEY"  # the key between the router and the experts it serves itself
)


class RouterServer:
    def __init__(
        self,
        registry: ExpertRegistry,
        root: Path,
        config: RouteServeConfig,
        cache_dir: Path,
        log: logging.Logger | None = None,
    ) -> None:
        from opensem.routing.evaluate import golden_questions
        from opensem.routing.forward import Forwarder
        from opensem.routing.service import RouterState, create_router_app

        self.config, self.log = config, log or logging.getLogger("opensem.route")
        key = api_key(config)  # refused before anything loads
        if not registry.experts:
            raise UsageError(
                "the registry holds no experts",
                hint="add one: opensem expert add manifests/NAME.yaml",
            )
        self.registry = registry.model_copy(
            update={"experts": [rooted(expert, root) for expert in registry.experts]}
        )
        self.local: Any = None
        local_url = self._serve_locally(
            [e for e in self.registry.experts if not e.endpoints()], cache_dir
        )
        classifier = build_classifier(
            self.registry.router.classifier, self.registry.experts, cache_dir
        )
        if self.registry.router.train_on_golden:
            labelled = [
                (q, e.name) for e in self.registry.experts if e.golden for q in golden_questions(e)
            ]
            if labelled:
                classifier.train(labelled)
                self.log.info(
                    "route: %s classifier trained on %d golden questions of %d experts",
                    classifier.name,
                    len(labelled),
                    len(self.registry.experts),
                )
        self.forwarder = Forwarder(
            self.registry, config.request_timeout_s, local_url, os.environ.get(LOCAL_KEY_ENV)
        )
        self.state = RouterState(self.registry, classifier, self.forwarder, config, key)
        self.app = create_router_app(self.state)
        self.uvicorn: Any = None
        self.url = ""

    def _serve_locally(self, experts: list[Expert], cache_dir: Path) -> str | None:
        """An `opensem serve` in this process for the experts that name no endpoint; its URL."""
        if not experts:
            return None
        from opensem.serving.config import ServeConfig
        from opensem.serving.server import Server

        os.environ.setdefault(LOCAL_KEY_ENV, secrets.token_urlsafe(32))
        self.local = Server(
            [f"{e.name}={e.model_path}" for e in experts],
            ServeConfig(port=0, api_key_env=LOCAL_KEY_ENV),
            cache_dir,
            self.log,
        )
        url = self.local.start()
        self.local.wait_ready(timeout_s=600)
        self.log.info(
            "route: serving %s in this process at %s", ", ".join(e.name for e in experts), url
        )
        return url

    def _uvicorn(self) -> Any:
        return uvicorn_server(self.app, self.config.host, self.config.port)

    def start(self) -> str:
        """Serve from a background thread; the base URL once listening (tests, benchmarks)."""
        self.uvicorn = self._uvicorn()
        self.url = f"http://{self.config.host}:{serve_in_thread(self.uvicorn, 'opensem-router')}"
        return self.url

    def run(self) -> None:
        """Serve until closed."""
        self.uvicorn = self._uvicorn()
        try:
            self.uvicorn.run()
        finally:
            self.close()

    def close(self) -> None:
        """Stop serving and close the upstream clients."""
        if self.uvicorn is not None:
            self.uvicorn.should_exit = True
        if self.local is not None:
            self.local.close()


def rooted(expert: Expert, root: Path) -> Expert:
    """Relative paths in the registry are relative to the registry file's folder."""

    def at(path: str | None) -> str | None:
        return (
            None if path is None or "://" in path or Path(path).is_absolute() else str(root / path)
        )

    model_path = at(expert.model_path) or expert.model_path
    golden = at(expert.golden) if expert.golden else None
    questions = [at(path) or path for path in expert.questions]
    return expert.model_copy(
        update={"model_path": model_path, "golden": golden or expert.golden, "questions": questions}
    )
