"""A real one-machine Ray cluster on 127.0.0.1, started with `ray start --head --block` and stopped
by ending that process group (never `ray stop`, which would stop every cluster of this user)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RayCluster:
    def __init__(self, worker_dir: Path, cpus: int = 2) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.worker_dir = worker_dir  # the workers' own stores (OPENSEM_RAY_WORKDIR)
        self.cpus = cpus
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RayCluster:
        ray = str(Path(sys.executable).with_name("ray"))
        env = {
            **os.environ,
            "OPENSEM_RAY_WORKDIR": str(self.worker_dir),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        command = [
            ray,
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={self.port}",
            f"--num-cpus={self.cpus}",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ]
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError("the Ray head did not open its port within 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
