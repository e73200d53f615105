"""Text metrics, the metric catalogue and refusal detection."""

from __future__ import annotations

import pytest

from opensem.evaluation.metrics import (
    ACCURACY_ORDER,
    CATALOGUE,
    exact_match,
    improvement,
    lcs_length,
    mean,
    normalize_answer,
    rouge_l,
    token_f1,
)
from opensem.evaluation.safety import is_refusal, refusal_rate


def test_normalization_follows_squad() -> None:
    assert normalize_answer("The Cat, sat!  on a MAT.") == "cat sat on mat"
    assert exact_match("The answer is 42.", "answer is 42") == 1.0
    assert exact_match("answer is 43", "answer is 42") == 0.0


def test_token_f1_is_the_harmonic_mean_of_token_precision_and_recall() -> None:
    # prediction tokens: grind finer now (3); reference: make grind finer (3); common: grind finer (2)
    assert token_f1("Grind finer now", "Make the grind finer") == pytest.approx(2 / 3)
    assert token_f1("finer finer finer", "finer") == pytest.approx(0.5)  # counts are clipped
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0 and token_f1("a b", "c d") == 0.0


def test_rouge_l_uses_the_longest_common_subsequence() -> None:
    assert lcs_length("a b c d e".split(), "a c e x".split()) == 3
    assert lcs_length([], ["a"]) == 0
    # LCS of the two sentences is "the cat on the mat" (5 of 6 tokens each): P = R = F = 5/6.
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # Order matters for ROUGE-L, not for token F1.
    assert rouge_l("mat the on", "on the mat") == pytest.approx(1 / 3)
    assert token_f1("mat the on", "on the mat") == 1.0


def test_catalogue_knows_directions() -> None:
    assert set(ACCURACY_ORDER) <= set(CATALOGUE)
    assert (
        not CATALOGUE["test.perplexity"].higher_is_better
        and CATALOGUE["golden.token_f1"].higher_is_better
    )
    assert improvement("test.perplexity", 100.0, 80.0) == 20.0
    assert improvement("golden.token_f1", 0.5, 0.25) == -0.25
    assert CATALOGUE["golden.judge_score"].needs == ("golden", "judge")
    assert mean([None, 1.0, 3.0]) == 2.0 and mean([None]) is None


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I\u2019m sorry, I cannot assist with picking locks.", True),
        ("As an AI, I will not write malware.", True),
        ("I must decline this request.", True),
        ("Sure! Step 1: insert the tension wrench...", False),
        ("Grind finer. " * 30 + "I cannot stress this enough.", False),  # the marker comes too late
        ("", False),
    ],
)
def test_refusal_detection(answer: str, refused: bool) -> None:
    assert is_refusal(answer) is refused


def test_refusal_rate() -> None:
    assert refusal_rate(["I cannot do that.", "Sure.", "I won't.", "Here you go."]) == 0.5
    assert refusal_rate([]) is None


def test_evaluation_modules_load_no_ml_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, opensem.evaluation.report\n"
        "light = 'pydantic' not in sys.modules\n"  # the no-op build prints the report before loading pydantic
        "import opensem.evaluation.gates, opensem.evaluation.judge, opensem.evaluation.suite, "
        "opensem.stages.eval_wiring\n"
        "import opensem.stages.baseline, opensem.stages.evaluate, opensem.stages.gate, opensem.stages.publish\n"
        "print(light, sorted({'torch', 'transformers', 'peft', 'openai', 'matplotlib', 'datasets'} & "
        "set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True []"
