"""The ground floor every package may build on: how a setting is declared once (fields: Section,
run_setting, pick, tagged unions), how sections are assembled (sections), names and paths every
floor agrees on (names), and YAML loaded into a model with file:line problems (yaml).

Nothing here imports a domain package, the stages, the manifest or the CLI (a test keeps it so).
"""
