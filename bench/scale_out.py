"""Scale-out: a shared stage cache between two clones, and parallel stages.

1. Two clones of the demo project share one S3 cache (moto's server on 127.0.0.1, reached through
   s3fs): clone A builds cold with OPENSEM_CACHE_MODE=read-write, clone B (a fresh copy, mode
   read) builds next. Prints the stages clone B ran (goal 0) and its wall time against A's.
2. The demo and two more manifests (the demo with other seeds: other splits, other adapters, the
   same data stages) built from an empty store with `opensem build -j 1` and with `-j 2`.

Each build is the real CLI in a fresh process. Work goes to bench/.work/scale/ (git-ignored).
Run from the project root:  .venv/bin/python bench/scale_out.py [--parts 12]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "scale"
OPENSEM = str(Path(sys.executable).parent / "opensem")


def project(folder: Path, extra_seeds: tuple[int, ...] = ()) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "manifests").mkdir(parents=True)
    shutil.copytree(ROOT / "data" / "tiny-demo", folder / "data" / "tiny-demo")
    demo = (ROOT / "manifests" / "tiny-demo.yaml").read_text()
    (folder / "manifests" / "tiny-demo.yaml").write_text(demo)
    for seed in extra_seeds:
        (folder / "manifests" / f"demo-{seed}.yaml").write_text(
            demo.replace("job_id: tiny-demo", f"job_id: demo-{seed}").replace(
                "seed: 42", f"seed: {seed}"
            )
        )
    return folder


def build(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[float, list[str], str]:
    started = time.perf_counter()
    done = subprocess.run(
        [OPENSEM, "build", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"build failed in {folder}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    ran = [
        line.split()[1]
        for line in done.stderr.splitlines()
        if line.strip().startswith("✓") and "built in" in line
    ]
    return seconds, ran, done.stderr


def shared_cache() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "OPENSEM_CACHE": "s3://stage-cache/demo",
    }
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket="stage-cache")
    try:
        cold, ran_a, _ = build(
            project(WORK / "clone-a"),
            "manifests/tiny-demo.yaml",
            env={**env, "OPENSEM_CACHE_MODE": "read-write"},
        )
        warm, ran_b, output = build(
            project(WORK / "clone-b"),
            "manifests/tiny-demo.yaml",
            env={**env, "OPENSEM_CACHE_MODE": "read"},
        )
    finally:
        server.stop()
    pulled = output.count("from cache")
    print("1. two clones of the demo sharing an S3 cache (moto on 127.0.0.1)")
    print(f"   clone A, cold, read-write   {cold:6.1f} s   {len(ran_a)} stages built")
    print(
        f"   clone B, fresh, read        {warm:6.1f} s   {len(ran_b)} stages built (goal 0), {pulled} from the "
        f"cache   B / A: {warm / cold:.2f}x"
    )


def parallel() -> None:
    seeds = (7, 11)
    serial, ran_1, _ = build(
        project(WORK / "j1", seeds),
        "manifests/tiny-demo.yaml",
        *(f"manifests/demo-{s}.yaml" for s in seeds),
        "-j",
        "1",
    )
    both, ran_2, _ = build(
        project(WORK / "j2", seeds),
        "manifests/tiny-demo.yaml",
        *(f"manifests/demo-{s}.yaml" for s in seeds),
        "-j",
        "2",
    )
    print("\n2. the demo and two more manifests from an empty store")
    print(f"   -j 1   {serial:6.1f} s   {len(ran_1)} stages built")
    print(
        f"   -j 2   {both:6.1f} s   {len(ran_2)} stages built   -j 2 / -j 1: {both / serial:.2f}x"
    )


if __name__ == "__main__":
    parts = sys.argv[sys.argv.index("--parts") + 1] if "--parts" in sys.argv else "12"
    WORK.mkdir(parents=True, exist_ok=True)
    if "1" in parts:
        shared_cache()
    if "2" in parts:
        parallel()
