"""Keyword, neural (all-MiniLM-L6-v2) and hybrid classifiers on the three shipped experts: the
espresso demo, houseplants and bike repair, scored on held-out golden questions."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.routing.classifiers import build_classifier
from opensem.routing.classifiers.hybrid import HybridOptions
from opensem.routing.classifiers.keyword import KeywordClassifier, KeywordOptions
from opensem.routing.classifiers.neural import NeuralOptions
from opensem.routing.evaluate import held_out_split, score
from opensem.routing.registry import Expert, expert_from_manifest

REPO = Path(__file__).resolve().parents[2]
JOBS = ("tiny-demo", "houseplants", "bike-repair")


@pytest.fixture(scope="module")
def experts() -> list[Expert]:
    return [expert_from_manifest(REPO / "manifests" / f"{job}.yaml") for job in JOBS]


@pytest.fixture(scope="module")
def neural(experts: list[Expert], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_classifier(NeuralOptions(), experts, tmp_path_factory.mktemp("cache"))


def test_keyword_confidence_grows_with_evidence_and_falls_with_ambiguity() -> None:
    experts = [Expert(name="coffee", model_path="x", keywords=["espresso", {"pattern": r"\bgrind(er|ing)?\b", "regex": True, "weight": 2.0}]),
               Expert(name="tea", model_path="y", keywords=["tea", {"pattern": "Oolong", "case_sensitive": True}], priority=1)]
    classifier = KeywordClassifier(KeywordOptions(), experts)
    one = classifier.classify("Is my ESPRESSO too short?")
    assert one.expert == "coffee" and one.confidence == pytest.approx(0.5)  # weight 1: 1 - 0.5
    strong = classifier.classify("espresso grinding advice")
    assert strong.confidence == pytest.approx(1 - 0.5**3) and strong.scores == {"coffee": 1.0, "tea": 0.0}
    split = classifier.classify("espresso or tea?")
    assert split.expert is None and split.confidence == pytest.approx(0.25)  # a tie is no answer (below the 0.3 threshold)
    assert split.runner_up == "coffee"  # tea ranks first on priority
    assert classifier.classify("oolong please").expert is None and classifier.classify("Oolong please").expert == "tea"
    assert classifier.classify("teapot").expert is None  # whole words only
    classifier.remove_expert("tea")
    assert classifier.experts() == ["coffee"]


def test_neural_routes_paraphrases_and_refuses_what_no_expert_knows(neural, experts: list[Expert]) -> None:  # type: ignore[no-untyped-def]
    assert neural.classify("my pothos is drooping and the soil smells").expert == "houseplants"
    assert neural.classify("the derailleur will not shift to the big ring").expert == "bike-repair"
    assert neural.classify("the puck is soggy after the shot").expert == "tiny-demo"
    far = neural.classify("Who won the football world cup in 1998?")
    assert far.expert is None and set(far.scores) == set(JOBS)
    batch = neural.classify_batch(["how often to water succulents", "tighten my brake cable"])
    assert [d.expert for d in batch] == ["houseplants", "bike-repair"]
    assert neural.classify("tighten my brake cable").scores == pytest.approx(batch[1].scores, abs=1e-5)  # batch and single agree


def test_training_a_head_makes_the_neural_classifier_surer(experts: list[Expert], tmp_path: Path) -> None:
    classifier = build_classifier(NeuralOptions(), experts, tmp_path)
    train, test = held_out_split(experts)
    before = score(classifier, test)
    classifier.train(train)
    after = score(classifier, test)
    assert after.accuracy >= before.accuracy and after.accuracy >= 0.9
    assert classifier.head is not None
    classifier.add_expert(Expert(name="tea", model_path="t", description="Loose-leaf tea brewing: steeping times and water temperatures."))
    assert classifier.head is None  # a head fitted without the new expert is dropped
    assert classifier.classify("how long should green tea steep").expert == "tea"


def test_hybrid_takes_the_keyword_fast_path_only_when_keywords_are_sure(experts: list[Expert], tmp_path: Path) -> None:
    hybrid = build_classifier(HybridOptions(), experts, tmp_path)
    fast = hybrid.classify("espresso shot with a burr grinder")  # three keywords of one expert
    assert fast.expert == "tiny-demo" and fast.classifier == "keyword" and fast.confidence >= 0.8
    slow = hybrid.classify("my orchid looks sad")  # no keyword: the neural score decides
    assert slow.expert == "houseplants" and slow.classifier == "hybrid"
    assert hybrid.classify("Who won the football world cup in 1998?").expert is None


def test_held_out_accuracy_on_three_domains(experts: list[Expert], tmp_path: Path) -> None:
    train, test = held_out_split(experts)
    assert len(test) >= 15 and not {q for q, _ in train} & {q for q, _ in test}
    assert {name for _, name in test} == set(JOBS)  # every domain is scored
    accuracy = {}
    for options in (KeywordOptions(), NeuralOptions(), HybridOptions()):
        classifier = build_classifier(options, experts, tmp_path)
        classifier.train(train)
        result = score(classifier, test)
        accuracy[options.type] = result.accuracy
        assert sum(sum(row.values()) for row in result.confusion.values()) == len(test)
    assert accuracy["hybrid"] >= 0.95, accuracy
    assert accuracy["neural"] >= 0.9, accuracy
