"""What a stage's Ray task asks for, from what the stage declares and what the cluster has."""

from __future__ import annotations

from opensem.core.ray_executor import HEAVY_MEMORY_SHARE, task_options

GIB = 2**30


def test_a_light_stage_asks_for_one_cpu() -> None:
    assert task_options(False, {"CPU": 8, "GPU": 2}, [16 * GIB]) == {"num_cpus": 1}


def test_a_heavy_stage_asks_for_a_gpu_only_where_the_cluster_has_one() -> None:
    assert "num_gpus" not in task_options(True, {"CPU": 8}, [16 * GIB])
    assert task_options(True, {"CPU": 8, "GPU": 1}, [16 * GIB])["num_gpus"] == 1


def test_a_heavy_stage_asks_for_most_of_the_smallest_machine() -> None:
    options = task_options(True, {"CPU": 8}, [32 * GIB, 8 * GIB])
    assert options["memory"] == int(HEAVY_MEMORY_SHARE * 8 * GIB)
    assert 2 * options["memory"] > 8 * GIB  # two of them never fit on one machine
