"""Routing queries to experts: the expert registry, classifiers and the router service.

- profile.py: the manifest's `expert:` section (domains, keywords, example queries)
- registry.py: the expert registry (YAML in the SRS's shape), filled from manifests and releases
- classifiers/: keyword, neural (all-MiniLM-L6-v2) and hybrid, behind one interface
- evaluate.py: routing accuracy on held-out golden questions, with a confusion table
- breaker.py: circuit breakers and replicas; service.py: the router's HTTP API; config.py: its settings

Nothing here is imported by `import opensem` or `opensem --help`.
"""
