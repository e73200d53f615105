"""moto's S3 server on 127.0.0.1 that a test can take down in the middle of an upload and bring back.

Clients reach moto through a small TCP relay on the public port. Stopping closes the relay's
listening socket and cuts every open connection, the way a storage server that dies looks from
the client (stopping moto's own server would leave keep-alive connections served). moto keeps its
buckets in this process, so what was stored before the stop is there after it, as with a real
storage service coming back.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from tests.servers.ray_cluster import free_port


class RestartableS3:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.url = ""  # s3://bucket/prefix, once a bucket is made
        self._moto: Any = None
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._moto is None:
            from moto.server import ThreadedMotoServer

            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._moto.start()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Take the server down: no new connection is accepted and every open one is cut."""
        with self._lock:
            listener, self._listener = self._listener, None
            cut, self._open = self._open, []
        if listener is not None:
            listener.close()
        for connection in cut:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def close(self) -> None:
        self.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def filesystem_options(self) -> dict[str, Any]:
        """s3fs options that give up on a stopped server within seconds rather than minutes."""
        return {
            "endpoint_url": self.endpoint,
            "config_kwargs": {
                "connect_timeout": 2,
                "read_timeout": 5,
                "retries": {"max_attempts": 1},
            },
        }

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.create_connection(self._moto.get_host_and_port())
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
