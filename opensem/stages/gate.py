"""Stage kind gate: the manifest's quality gates checked against the evaluation report.

A passing gate writes gates.json (every gate with the values it compared), which publish takes as
an input, so nothing is published before the gates pass. A failing gate raises GatesFailed (exit
3) and stores nothing: loosening a gate changes only this stage's params, so the next build
reruns the gate and publish and finds training and evaluation in the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.core.files import write_json
from opensem.errors import StageError
from opensem.evaluation.config import QualityGate
from opensem.evaluation.gates import GatesFailed, check_all
from opensem.evaluation.metrics import CATALOGUE
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import ReleasePart, StageContext, StageParams, StageResult
from opensem.stages.eval_wiring import golden_input, refusals_input
from opensem.stages.wiring import Wiring

NEEDS = {
    "golden": ("golden set", "add a golden set (evaluation.golden, or data/{job}/golden/)"),
    "judge": ("judge", "configure evaluation.judge"),
    "refusals": (
        "refusal prompts",
        "add refusal prompts (evaluation.refusal_prompts, or data/{job}/refusals/)",
    ),
    "quantized": ("quantization", "add a quantize section"),
    "knowledge": (
        "knowledge base measured on a golden set",
        "add a knowledge section and a golden set (data/{job}/golden/), trained locally",
    ),
    "weights": (
        "model weights (compute.backend openai answers only through the provider, so loss and perplexity are not "
        "measured)",
        "gate on a text metric such as golden.token_f1, or train locally (compute.backend auto)",
    ),
}


class GateParams(StageParams):
    gates: list[QualityGate] = Field(min_length=1)


@register
class Gate:
    name = "gate"
    version = "2"  # 2: gates as the manifest writes them (unset rules included)
    Params = GateParams
    sections = (
        section(
            "evaluation.gates",
            list[QualityGate],
            default_factory=list,
            description="Quality gates; any failing one fails the build (exit 3) and blocks publishing.",
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The gates, when there are any; a gate on a metric this manifest cannot measure is a problem."""
        gates = wiring.section("evaluation.gates")
        if not gates:
            return
        golden = golden_input(wiring) is not None or bool(
            wiring.collection("golden")
        )  # its own, or those a merge inherits
        quantized = wiring.collection("quantized")
        available = {
            "golden": golden,
            "judge": wiring.section("evaluation").judge is not None,
            "refusals": refusals_input(wiring) is not None,
            "quantized": bool(quantized) or wiring.has_failed("quantized"),
            "weights": wiring.manifest.compute.backend != "openai",
            "knowledge": wiring.channel("grounded") is not None,
        }
        for index, gate in enumerate(gates):
            for need in CATALOGUE[gate.metric].needs:
                if not available[need]:
                    what, hint = NEEDS[need]
                    wiring.problem(
                        ("evaluation", "gates", index, "metric"),
                        f"{gate.metric} cannot be measured: this manifest has no {what}",
                        hint.format(job=wiring.manifest.job_id),
                    )
        wants_quantized = any("quantized" in CATALOGUE[gate.metric].needs for gate in gates)
        wants_knowledge = any("knowledge" in CATALOGUE[gate.metric].needs for gate in gates)
        wiring.add(
            self,
            GateParams(gates=gates),
            {
                "report": wiring.channel("report"),
                **(quantized if wants_quantized else {}),
                **({"grounded": wiring.channel("grounded")} if wants_knowledge else {}),
            },
            provides=("gate",),
        )

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        """The gates a release passed, with the values they compared."""
        return ReleasePart(
            {"gates.json": out_dir / "gates.json"},
            {"gates": json.loads((out_dir / "gates.json").read_text())["gates"]},
        )

    def run(
        self, params: GateParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Check every gate; raise GatesFailed when any fails, else record what passed."""
        path = Path(inputs["report"]) / "report.json"
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StageError(
                f"gate: cannot read the evaluation report: {exc}",
                hint="rebuild with --force evaluate",
            ) from None
        report["metrics"].update(_quantized_metrics(inputs))
        report["metrics"].update(_knowledge_metrics(inputs))
        outcomes = check_all(params.gates, report)
        if not all(outcome.passed for outcome in outcomes):
            raise GatesFailed(outcomes)
        record = {"passed": True, "gates": [outcome.as_json() for outcome in outcomes]}
        write_json(out_dir / "gates.json", record)
        return StageResult(
            summary=f"{len(outcomes)} of {len(outcomes)} quality gates passed",
            metrics={"gates": record["gates"]},
        )


def _quantized_metrics(inputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """The worst quantized format's perplexity change and compression ratio, as report rows."""
    reports = [
        json.loads((Path(path) / "quantize.json").read_text(encoding="utf-8"))
        for slot, path in sorted(inputs.items())
        if slot.startswith("quantize-")
    ]
    if not reports:
        return {}
    worst = {
        "quantized.perplexity_change": max(r["perplexity_change"] for r in reports),
        "quantized.compression_ratio": min(r["compression_ratio"] for r in reports),
    }
    return {
        name: {
            "base": None,
            "tuned": value,
            "higher_is_better": CATALOGUE[name].higher_is_better,
            "delta": None,
            "change": None,
        }
        for name, value in worst.items()
    }


def _knowledge_metrics(inputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """The ground stage's knowledge.* figures, as report rows."""
    if "grounded" not in inputs:
        return {}
    from opensem.stages.ground import read_knowledge_metrics

    return {
        name: {
            "base": None,
            "tuned": value,
            "higher_is_better": True,
            "delta": None,
            "change": None,
        }
        for name, value in read_knowledge_metrics(Path(inputs["grounded"])).items()
    }
