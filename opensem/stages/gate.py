"""Stage kind gate: the manifest's quality gates checked against the evaluation report.

A passing gate writes gates.json (every gate with the values it compared), which publish takes as
an input, so nothing is published before the gates pass. A failing gate raises GatesFailed (exit
3) and stores nothing: loosening a gate changes only this stage's params, so the next build
reruns the gate and publish and finds training and evaluation in the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from pydantic import Field, model_validator

from opensem.errors import StageError
from opensem.evaluation.gates import GatesFailed, check_all
from opensem.evaluation.metrics import CATALOGUE
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult


class GateSpec(StageParams):
    metric: str
    min: float | None = None
    max: float | None = None
    min_delta_vs_baseline: float | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> "GateSpec":
        if self.metric not in CATALOGUE:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(CATALOGUE)}")
        rules = [name for name in ("min", "max", "min_delta_vs_baseline") if getattr(self, name) is not None]
        if len(rules) != 1:
            raise ValueError(f"a gate sets exactly one of min, max, min_delta_vs_baseline; {self.metric} sets {len(rules)}")
        return self


class GateParams(StageParams):
    gates: list[GateSpec] = Field(min_length=1)


@register
class Gate:
    name = "gate"
    version = "1"
    Params = GateParams

    def run(self, params: GateParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Check every gate; raise GatesFailed when any fails, else record what passed."""
        path = Path(inputs["report"]) / "report.json"
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StageError(f"gate: cannot read the evaluation report: {exc}", hint="rebuild with --force evaluate") from None
        outcomes = check_all([gate.model_dump() for gate in params.gates], report)
        if not all(outcome.passed for outcome in outcomes):
            raise GatesFailed(outcomes)
        record = {"passed": True, "gates": [outcome.as_json() for outcome in outcomes]}
        (out_dir / "gates.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return StageResult(summary=f"{len(outcomes)} of {len(outcomes)} quality gates passed", metrics={"gates": record["gates"]})
