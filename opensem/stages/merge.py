"""Stage kind merge (Alchemist): one artifact from several experts' adapters or models.

Sources are this manifest's trained adapter (`stage: train`), another manifest of the project
(`manifest: manifests/safety.yaml`, whose stages join this graph, so editing its data makes this
merge stale), or a published release (`registry: build/registry/safety`, `tag: v1`, its digest
read from the registry's index when planning and checked again on the way in). What cannot be
merged is refused while wiring when the manifests say so (DoRA, ranks a method cannot combine,
other base models), and from the artifacts' config files before any weight loads otherwise.

The merge provides the `adapter` channel, so the merged artifact is evaluated on every golden set
it inherits, gated and published like a trained one.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from opensem.core.digests import digest_tree
from opensem.core.files import write_json
from opensem.errors import DataError, StageError
from opensem.release.merge import (
    SAME_RANK,
    USES_DENSITY,
    USES_SIGN,
    MergeMethod,
    find_part,
    merge_adapters,
    merge_models,
    refusals,
)
from opensem.settings.fields import Section, invalid
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, StageContext, StageResult
from opensem.stages.eval_wiring import golden_input
from opensem.stages.wiring import Wiring
from opensem.training.methods.base import resolve_base_model

KEY = ("merge",)


class MergeSource(Section):
    stage: Literal["train"] | None = Field(
        None, description="train: this manifest's own trained adapter."
    )
    manifest: str | None = Field(
        None,
        description="Another manifest of this project; its trained (or merged) artifact, built first.",
    )
    registry: str | None = Field(
        None,
        description=(
            "An expert's folder in a registry (fsspec URL or project path, e.g. "
            "build/registry/safety), with tag."
        ),
    )
    tag: str | None = Field(None, description="The published release to take from registry.")
    weight: float = Field(
        1.0, description="How much of this source the merge takes (negative subtracts it)."
    )

    @model_validator(mode="after")
    def _one_origin(self) -> MergeSource:
        origins = [
            name for name in ("stage", "manifest", "registry") if getattr(self, name) is not None
        ]
        if len(origins) != 1:
            raise invalid(
                "a merge source names exactly one of stage, manifest, registry; this one names "
                f"{', '.join(origins) or 'none'}"
            )
        if (self.registry is None) != (self.tag is None):
            raise invalid("a registry source needs a tag, and only a registry source takes one")
        return self


class MergeConfig(Section):
    method: MergeMethod = Field(
        "dare_ties",
        description=(
            "linear, ties, dare_ties, dare_linear, magnitude_prune (one rank), cat or svd (any "
            "ranks); whole models: linear, ties, dare_ties, dare_linear."
        ),
    )
    sources: list[MergeSource] = Field(
        min_length=2,
        description="What to merge: this manifest's adapter, other manifests' or published releases.",
    )
    density: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of each adapter's values kept (ties, dare_ties, dare_linear, magnitude_prune).",
    )
    majority_sign_method: Literal["total", "frequency"] = Field(
        "total",
        description="How ties and dare_ties elect each value's sign: by total magnitude or by count.",
    )
    rank: int | None = Field(
        None, gt=0, description="Rank of an svd merge; the largest source rank when unset."
    )

    def lot_exclusions(self) -> set[str]:
        """Settings the chosen merge method does not use leave the lot."""
        unused = set() if self.method in USES_DENSITY else {"density"}
        unused |= set() if self.method in USES_SIGN else {"majority_sign_method"}
        return unused | (set() if self.method == "svd" else {"rank"})


class ResolvedSource(MergeSource):
    """A source as the stage finds it: its name, its input slot, or the release the index named."""

    name: str
    slot: str | None = None
    release: dict[str, str] | None = None  # {lot, digest} of a registry source, from its index


class MergeParams(MergeConfig):
    sources: list[ResolvedSource] = Field(min_length=2)  # type: ignore[assignment]
    seed: int  # DARE prunes at random
    base_model: str | None = None


@register
class Merge:
    name = "merge"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    local = True  # reads the registry, which may be a folder of this machine
    version = "1"
    Params = MergeParams
    sections = (
        section(
            "merge",
            MergeConfig | None,
            None,
            description=(
                "Alchemist: merge adapters (or whole models) of this and other experts into one; "
                "omit for none."
            ),
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The merge stage and the other manifests it includes, when the manifest merges."""
        config = wiring.section("merge")
        if config is None:
            return
        inputs: dict[str, Any] = dict(wiring.base_inputs())
        resolved: list[ResolvedSource] = []
        facts: list[
            tuple[str, str, int | None]
        ] = []  # (name, method, rank) of sources the manifests describe
        for index, source in enumerate(config.sources):
            key = (*KEY, "sources", index)
            slot = f"source{index}"
            if source.stage is not None:
                inputs[slot] = wiring.channel("adapter")
                if inputs[slot] is None:
                    wiring.problem(
                        (*key, "stage"),
                        "this manifest trains no adapter to merge (it has no data)",
                        "add data, or merge other manifests only",
                    )
                method = wiring.manifest.method_config
                facts.append(("train", method.type, getattr(method, "rank", None)))
                resolved.append(ResolvedSource(**source.model_dump(), name="train", slot=slot))
                if inputs[slot] is not None:
                    wiring.collect("merge-sources", "model:train", inputs[slot])
            elif source.manifest is not None:
                other = wiring.include(source.manifest, (*key, "manifest"))
                if other is None:
                    continue
                job = other.manifest.job_id
                inputs[slot] = other.channel("adapter")
                if other.base_identity() != wiring.base_identity():
                    wiring.problem(
                        (*key, "manifest"),
                        f"{job} adapts another base model ({other.base_identity()}) than this manifest "
                        f"({wiring.base_identity()})",
                        "merge experts trained on one base (a `pretrain:` section makes a base of its own), or fold "
                        "each and merge whole models",
                    )
                golden = golden_input(other)
                if golden is not None:
                    wiring.collect("golden", f"golden:{job}", golden)
                if other.section("merge") is None:
                    method = other.manifest.method_config
                    facts.append((job, method.type, getattr(method, "rank", None)))
                resolved.append(ResolvedSource(**source.model_dump(), name=job, slot=slot))
                if inputs[slot] is not None:
                    wiring.collect("merge-sources", f"model:{job}", inputs[slot])
            else:
                name = f"{posixpath.basename(str(source.registry).rstrip('/'))}:{source.tag}"
                found = _release(wiring, source, key)
                if found is not None:
                    release, fact = found
                    facts.extend([(name, *fact)] if fact else [])
                    resolved.append(
                        ResolvedSource(**source.model_dump(), name=name, release=release)
                    )
        if len(resolved) < len(config.sources):
            wiring.fail(
                "adapter"
            )  # a source could not be found; its problem is recorded, and nothing after the merge repeats it
            return
        _check_methods(wiring, config.method, facts)
        params = wiring.params(
            MergeParams,
            {
                **config.model_dump(),
                "sources": [r.model_dump() for r in resolved],
                "seed": wiring.manifest.seed,
                "base_model": wiring.hub_model,
            },
        )
        if (
            params is None
            or wiring.add(
                self,
                params,
                inputs,
                provides=("adapter",),
                volatile=any(r.release for r in resolved),
            )
            is None
        ):
            wiring.fail("adapter")

    def run(
        self, params: MergeParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Find every source's artifact (pulling releases, digests checked), refuse what cannot merge, merge."""
        base_path = resolve_base_model(inputs, params.base_model, self.name)
        parts = []
        for source in params.sources:
            root = inputs[source.slot] if source.slot else _pull(source, inputs, ctx)
            parts.append(find_part(source.name, Path(root), source.weight))
        problems = refusals(parts, params.method)
        if problems:
            raise DataError(
                f"merge: {problems[0]}",
                hint="; ".join(problems[1:]) or "change merge.method or merge.sources",
            )
        kind = parts[0].kind
        target = out_dir / kind
        if kind == "adapter":
            details = merge_adapters(
                base_path,
                parts,
                params.method,
                params.density,
                params.majority_sign_method,
                params.rank,
                params.seed,
                target,
            )
        else:
            details = merge_models(
                base_path, parts, params.method, params.density, params.seed, target
            )
        shutil.rmtree(ctx.work_dir / "releases", ignore_errors=True)
        sources = [
            {"name": s.name, "weight": s.weight, **({"release": s.release} if s.release else {})}
            for s in params.sources
        ]
        write_json(
            out_dir / "merge.json", {"method": params.method, "kind": kind, "sources": sources}
        )  # for the release's model card
        summary = f"{params.method} of {len(parts)} {kind}s: " + ", ".join(
            f"{p.name} x{p.weight:g}" for p in parts
        )
        return StageResult(
            summary=summary,
            metrics={"method": params.method, "kind": kind, "sources": sources, **details},
        )


def _check_methods(wiring: Wiring, method: str, facts: list[tuple[str, str, int | None]]) -> None:
    """What the manifests already say cannot merge: DoRA, ranks the method cannot combine, adapters
    with whole models."""
    dora = [name for name, kind, _ in facts if kind == "dora"]
    if dora:
        wiring.problem(
            (*KEY, "sources"),
            f"DoRA adapters cannot go through a weighted merge (peft issue 3761: wrong results): {', '.join(dora)}",
            "train those experts with lora, or leave them out of the merge",
        )
    full = {name for name, kind, _ in facts if kind == "sft"}
    if full and len(full) != len(facts):
        wiring.problem(
            (*KEY, "sources"),
            f"adapters and whole models cannot be merged together (whole: {', '.join(sorted(full))})",
            "merge experts of one kind",
        )
    ranks = {rank for name, kind, rank in facts if name not in full}
    if method in SAME_RANK and len(ranks) > 1:
        shown = ", ".join(f"{name} r={rank}" for name, _, rank in facts)
        wiring.problem(
            (*KEY, "method"),
            f"{method} combines adapters of one rank, and these differ ({shown})",
            "use method cat or svd, or train the experts with one rank",
        )


def _release(
    wiring: Wiring, source: MergeSource, key: tuple[Any, ...]
) -> tuple[dict[str, str], tuple[str, int | None] | None] | None:
    """The registry index's entry for the source's tag, read while planning so its digest keys the
    lot, and what its artifact is ((method, rank) from its adapter config, ("sft", None) for a model)."""
    from opensem.release.registry import FILES, open_registry, read_index

    try:
        fs, folder = open_registry(str(source.registry), wiring.loaded.project_root)
        entry = read_index(fs, posixpath.dirname(folder), posixpath.basename(folder))["tags"].get(
            source.tag
        )
        if entry is None:
            wiring.problem(
                (*key, "tag"),
                f"{source.registry} has no release {source.tag!r}",
                "list its tags in its index.json, or publish it first",
            )
            return None
        release = posixpath.join(folder, str(source.tag))
        with fs.open(posixpath.join(release, FILES), "rb") as handle:
            names = set(json.loads(handle.read())["files"])
        fact: tuple[str, int | None] | None = None
        adapter = next(
            (
                name
                for name in ("adapter_config.json", "adapter/adapter_config.json")
                if name in names
            ),
            None,
        )
        if adapter is not None:
            with fs.open(posixpath.join(release, adapter), "rb") as handle:
                config = json.loads(handle.read())
            fact = ("dora" if config.get("use_dora") else "lora", config.get("r"))
        elif names & {"config.json", "model/config.json"}:
            fact = ("sft", None)
    except Exception as exc:  # any backend error: unreachable, no credentials, a damaged index
        wiring.problem(
            (*key, "registry"),
            f"cannot read the release {source.tag} at {source.registry}: {type(exc).__name__}: {exc}",
            "check the registry URL and credentials",
        )
        return None
    return {"lot": str(entry["lot"]), "digest": str(entry["digest"])}, fact


def _pull(source: ResolvedSource, inputs: dict[str, Path], ctx: StageContext) -> Path:
    """Download a release and check it is, byte for byte, what the index said when this build was planned."""
    from opensem.release.registry import pull_checked

    assert source.registry is not None and source.tag is not None and source.release is not None
    dest = pull_checked(
        source.registry,
        ctx.project_root,
        source.tag,
        source.release["digest"],
        ctx.work_dir / "releases" / source.name.replace(":", "-"),
        "merge",
    )
    shipped = dest / "base_model"
    if (
        shipped.is_dir()
        and "base" in inputs
        and digest_tree(shipped) != digest_tree(Path(inputs["base"]))
    ):
        raise StageError(
            f"merge: release {source.name} was trained on another base model than this manifest's",
            hint="merge adapters of one base model",
        )
    return dest
