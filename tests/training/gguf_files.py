"""GGUF files and wheels that carry them, made from the tiny model for tests (no index, no hub)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def tiny_gguf(model_dir: Path, out_dir: Path) -> Path:
    """The tiny model as an f32 GGUF file, written by llama.cpp's converter."""
    from opensem.release.quantize.gguf import Gguf, GgufOptions

    return Gguf().quantize(GgufOptions(type="f32"), model_dir, out_dir, [])


def wheel_with(
    member: str, payload: Path, folder: Path, name: str = "tinygguf", version: str = "0.1.0"
) -> Path:
    """A wheel `name-version-py3-none-any.whl` in folder carrying payload at member, as pip accepts it."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        member: payload.read_bytes(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: opensem-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = (
        "".join(f"{path},sha256={_b64(data)},{len(data)}\n" for path, data in files.items())
        + f"{info}/RECORD,,\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
