"""The Data Forge: prompts, answer parsing and budgets for the synthesize stage."""
