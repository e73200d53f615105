"""Release: what leaves the build, the fsspec registry that receives it, and pulling it back."""
