"""The Judge: how a base model and its fine-tuned adapter are measured, compared and gated.

- metrics.py: the metric catalogue (names, direction) and the text metrics (EM, token F1, ROUGE-L)
- items.py: golden set, refusal prompts and test-split questions as evaluation items
- generation.py: greedy (or seeded sampled) answers from a model, batched with left padding
- judge.py: an LLM judge scoring answers 1 to 5 through the teacher provider layer
- safety.py: refusal detection for the safety rate
- suite.py: one model over every item set: the evaluation both baseline and evaluate run
- report.py: the baseline vs fine-tuned report (JSON, Markdown, PNG, CLI table, headline)
- gates.py: quality gates checked against the report
- params.py: the settings baseline and evaluate share; wiring.py: manifest -> their params and inputs

Nothing here imports torch or transformers at module level.
"""
