"""The lock committed beside the demo manifest agrees with the manifest and the data, as CI checks it."""

from pathlib import Path

from tests.e2e.conftest import REPO, Project


def test_committed_demo_lock_verifies_against_the_data() -> None:
    code, output = Project(REPO).run(
        "verify", str(REPO / "manifests" / "tiny-demo.yaml"), "--no-registry"
    )
    assert code == 0, (
        f"{output}\nrebuild the demo (`opensem build manifests/tiny-demo.yaml`) and commit its lock"
    )


def test_lock_records_no_absolute_paths() -> None:
    text = (REPO / "manifests" / "tiny-demo.lock").read_text()
    assert str(REPO) not in text and "file://" not in text and str(Path.home()) not in text
