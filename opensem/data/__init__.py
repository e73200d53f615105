"""Data: dataset formats, sources (paths, globs, URLs), document chunking, records I/O and export."""
