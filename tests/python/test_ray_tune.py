"""The Ray Tune example (examples/ray_tune_gains.py): a small search on a local Ray instance
started by the test, scored by the library."""

from __future__ import annotations

import math

import depthpilot
import pytest
import ray

from conftest import SCENES, load_example

TRIALS = 8
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def example():
    return load_example("ray_tune_gains")


@pytest.fixture(scope="module")
def result(example):
    assert not ray.is_initialized()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = example.search(
            num_samples=TRIALS,
            seeds=SEEDS,
            scenes=[str(SCENES / "figure8.ron")],
            max_concurrent=2,
            seed=7,
        )
    finally:
        ray.shutdown()
    return out


def test_search_finishes_eight_trials_with_finite_costs(result):
    trials = result["trials"]
    assert len(trials) >= TRIALS
    assert all(t["status"] == "TERMINATED" for t in trials), [t["error"] for t in trials]
    assert all(math.isfinite(t["cost"]) for t in trials), [t["cost"] for t in trials]
    # Each trial searched every tunable gain, within x[1/3, 3] of the scene's value.
    names = set(depthpilot.tunable_gains())
    for t in trials:
        assert set(t["gains"]) == names
        for n, v in t["gains"].items():
            ratio = v / result["default_gains"][n]
            assert 1 / 3 - 1e-9 <= ratio <= 3 + 1e-9, (n, ratio)


def test_best_is_the_lowest_cost(result):
    assert all(result["best_cost"] <= t["cost"] for t in result["trials"])
    assert result["best_gains"] in [t["gains"] for t in result["trials"]]


def test_baseline_is_the_library_score_of_the_defaults(result):
    direct = depthpilot.score_gains([SCENES / "figure8.ron"], {}, SEEDS, jobs=1)
    assert direct["cost"] == direct["baseline_cost"]
    assert result["baseline_cost"] == direct["baseline_cost"]
    # The best gains, rescored outside Ray, cost what the trial reported.
    again = depthpilot.score_gains([SCENES / "figure8.ron"], result["best_gains"], SEEDS, jobs=1)
    assert again["cost"] == pytest.approx(result["best_cost"], rel=1e-12)


def test_best_beats_the_defaults_or_says_why_not(result):
    if result["beats_defaults"]:
        assert result["best_cost"] < result["baseline_cost"]
        assert result["why_not"] is None
    else:
        assert result["best_cost"] >= result["baseline_cost"]
        assert f"{result['baseline_cost']:.4f}" in result["why_not"]


def test_ray_was_shut_down(result):
    assert not ray.is_initialized()


def test_the_verdict_explains_a_search_that_did_not_beat_the_defaults(example):
    assert example._verdict(0.9, 1.0, [0.9, 1.2]) is None
    why = example._verdict(1.0, 1.0, [1.0, 1.3, 2.0])
    assert "1.0000" in why and "(2 of 3 trials worse, median 1.3000)" in why
