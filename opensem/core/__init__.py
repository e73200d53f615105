"""The build core: digests and lot numbers, the stage graph, planning, the store, the lock, the
no-op stamp, verification and the doit engine.

It knows nothing about machine learning: stage kinds, manifests and data formats live in the
domain packages, which plug into the core through the stage graph's plain values and a runner
the engine is handed. Nothing here imports from opensem's domain packages (a test enforces it).
"""
