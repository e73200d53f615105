"""Learning from use: feedback on an expert's answers, kept per expert, turned into training data.

- records.py: a feedback record, the append-only store (data/<job>/feedback/feedback.jsonl), import
- rules.py: the manifest's `feedback` section, and records -> SFT examples, preference pairs or KTO labels

Nothing here imports torch or a web framework.
"""
