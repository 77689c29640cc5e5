#!/usr/bin/env python3
"""A Ray Tune search over the cascade gains, scored by the depthpilot library.

Each trial flies one set of gains over scenes x seeds with ``depthpilot.score_gains`` (the
objective of ``depthpilot tune``: p95 over seeds of the rms position error relative to the
scene's own gains on the same flights, plus crash and overshoot penalties; the scene's gains
cost 1 plus their penalties, lower is better). Ray runs the trials in parallel, one core each.

The search coordinates are those of ``depthpilot tune``: for each gain in
``depthpilot.tunable_gains()`` the natural log of its factor from the first scene's value,
drawn like the first generation of ``depthpilot tune`` (normal, spread 0.35, clamped to
x[1/3, 3]) by a seeded Ray Tune searcher, so the same arguments give the same trials.

Locally (starts a Ray instance on this machine and shuts it down at the end):

    python examples/ray_tune_gains.py --samples 8 --cpus 2

On a Ray cluster (``ray start --head`` on one node, ``ray start --address=HEAD:6379`` on the
others, the depthpilot package installed on every node): ``--address auto`` on a cluster node,
or ``RAY_ADDRESS=...``. The scene files are read here and shipped to the trials.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import depthpilot
import ray
from ray import tune

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENES = (str(REPO / "scenes" / "figure8.ron"),)
DEFAULT_SEEDS = (0, 1)
# The spread of `depthpilot tune`'s first generation (SIGMA0), in log-gain units, and its range.
SPREAD = 0.35
LOG_RANGE = math.log(3.0)


def gains_at(base: dict, offsets: dict) -> dict:
    """The gains at log-offsets from `base`, each clamped to x[1/3, 3] (as `depthpilot tune`)."""
    return {
        name: base[name] * math.exp(min(max(x, -LOG_RANGE), LOG_RANGE))
        for name, x in offsets.items()
    }


def _load_scenes(texts: Sequence[tuple]) -> list:
    """Scenes from (file name, RON text) pairs, through temporary files (a trial may run on a
    node that does not have the driver's files)."""
    scenes = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in texts:
            path = Path(tmp) / name
            path.write_text(text)
            scenes.append(depthpilot.load_scene(path))
    return scenes


def _trial(config: dict, scene_texts: Sequence[tuple], seeds: Sequence[int]) -> dict:
    """One trial: the gains at `config`'s log-offsets, scored on every scene x seed."""
    scenes = _load_scenes(scene_texts)
    base = scenes[0].gains
    gains = gains_at(base, config)
    out = depthpilot.score_gains(scenes, gains, seeds, jobs=1)
    return {
        "cost": out["cost"],
        "baseline_cost": out["baseline_cost"],
        "gains": gains,
        "p95_rms_m": out["score"]["p95_rms_m"],
        "crashes": out["score"]["crashes"],
    }


def _verdict(best_cost: float, baseline_cost: float, costs: Sequence[float]) -> Optional[str]:
    """None when the best beats the defaults, otherwise why not, with the numbers."""
    if best_cost < baseline_cost:
        return None
    worse = sum(c > baseline_cost for c in costs)
    median = sorted(costs)[len(costs) // 2]
    return (
        f"no trial beat the scene's own gains: best cost {best_cost:.4f} >= baseline "
        f"{baseline_cost:.4f} ({worse} of {len(costs)} trials worse, median {median:.4f}). "
        "Gains drawn at random around the defaults mostly fly worse on these scenes and seeds: "
        "either the defaults are near this objective's optimum here, or "
        f"{len(costs)} trials are too few to find the better region; try more --samples, other "
        "scenes or seeds, or `depthpilot tune` (its CEM moves towards the better trials)."
    )


def search(
    num_samples: int = 8,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    scenes: Sequence[str] = DEFAULT_SCENES,
    max_concurrent: int = 2,
    address: Optional[str] = None,
    seed: int = 7,
    num_cpus: Optional[int] = None,
) -> dict:
    """Runs a Ray Tune search over the cascade gains and returns what it found.

    ``address`` (or ``RAY_ADDRESS``) connects to a running Ray cluster; otherwise a local Ray
    instance with ``num_cpus`` (default: ``max_concurrent``) is started. Ray is shut down at the
    end only if this call started it.

    Returns a dict: ``best_gains`` (the best trial's searched gains), ``best_cost``,
    ``baseline_cost`` (the scene's own gains on the same flights), ``beats_defaults``
    (best_cost < baseline_cost), ``why_not`` (None when it beats them, otherwise the reason
    with the numbers), ``trials`` (one dict per trial: ``status``, ``cost``, ``gains``),
    ``default_gains``, ``scenes``, ``seeds`` and ``elapsed_s``.
    """
    t0 = time.monotonic()
    seeds = [int(s) for s in seeds]
    paths = [Path(s).resolve() for s in scenes]
    scene_texts = [(p.name, p.read_text()) for p in paths]
    base_scenes = [depthpilot.load_scene(p) for p in paths]  # fail early on a bad scene
    default_gains = {n: base_scenes[0].gains[n] for n in depthpilot.tunable_gains()}
    space = {n: tune.randn(0.0, SPREAD) for n in depthpilot.tunable_gains()}

    address = address or os.environ.get("RAY_ADDRESS")
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=num_cpus or max_concurrent,
                include_dashboard=False,
                log_to_driver=False,
            )
        started = True
    try:
        if __name__ != "__main__":
            # Imported (a test, a notebook): ship this module's code to the workers by value,
            # as they may not have examples/ on their path.
            ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        with tempfile.TemporaryDirectory(prefix="ray_tune_gains_") as storage:
            tuner = tune.Tuner(
                tune.with_resources(
                    tune.with_parameters(_trial, scene_texts=scene_texts, seeds=seeds),
                    {"cpu": 1},
                ),
                param_space=space,
                tune_config=tune.TuneConfig(
                    metric="cost",
                    mode="min",
                    num_samples=num_samples,
                    search_alg=tune.search.BasicVariantGenerator(
                        max_concurrent=max_concurrent, random_state=seed
                    ),
                ),
                run_config=tune.RunConfig(
                    name="ray_tune_gains", storage_path=storage, verbose=0
                ),
            )
            grid = tuner.fit()
            trials = []
            for r in grid:
                m = r.metrics or {}
                trials.append(
                    {
                        "status": "ERROR" if r.error else "TERMINATED",
                        "error": str(r.error) if r.error else None,
                        "cost": m.get("cost", math.nan),
                        "baseline_cost": m.get("baseline_cost", math.nan),
                        "gains": m.get("gains"),
                    }
                )
            ok = [t for t in trials if t["status"] == "TERMINATED"]
            if not ok:
                raise RuntimeError(f"every trial failed; the first: {trials[0]['error']}")
            best = min(ok, key=lambda t: t["cost"])
    finally:
        if started:
            ray.shutdown()

    baseline_cost = best["baseline_cost"]
    costs = [t["cost"] for t in ok]
    return {
        "best_gains": best["gains"],
        "best_cost": best["cost"],
        "baseline_cost": baseline_cost,
        "beats_defaults": best["cost"] < baseline_cost,
        "why_not": _verdict(best["cost"], baseline_cost, costs),
        "trials": trials,
        "default_gains": default_gains,
        "scenes": [str(p) for p in paths],
        "seeds": seeds,
        "elapsed_s": time.monotonic() - t0,
    }


def _seed_range(s: str) -> list:
    a, sep, b = s.partition("..")
    if not sep or not a.isdigit() or not b.isdigit() or int(b) <= int(a):
        raise argparse.ArgumentTypeError(f"`{s}`: expected A..B with A < B (B excluded)")
    return list(range(int(a), int(b)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=8, help="trials (default 8)")
    p.add_argument("--scenes", nargs="+", default=list(DEFAULT_SCENES), help="scene files")
    p.add_argument("--seeds", type=_seed_range, default=list(DEFAULT_SEEDS), help="A..B")
    p.add_argument("--address", default=None, help="a Ray cluster (`auto`; or RAY_ADDRESS)")
    p.add_argument("--cpus", type=int, default=2, help="trials at a time (and a local Ray's cores)")
    p.add_argument("--search-seed", type=int, default=7, help="the searcher's seed")
    a = p.parse_args(argv)
    r = search(
        num_samples=a.samples,
        seeds=a.seeds,
        scenes=a.scenes,
        max_concurrent=a.cpus,
        address=a.address,
        seed=a.search_seed,
        num_cpus=a.cpus,
    )
    print(f"scenes {', '.join(Path(s).name for s in r['scenes'])}; seeds {r['seeds']}")
    print(f"{'trial':>5} {'status':<10} {'cost':>9}")
    for i, t in enumerate(r["trials"]):
        print(f"{i:>5} {t['status']:<10} {t['cost']:>9.4f}")
    print(f"{'gain':<20} {'default':>9} {'best':>9}")
    for n, v in r["best_gains"].items():
        print(f"{n:<20} {r['default_gains'][n]:>9.4g} {v:>9.4g}")
    print(f"best cost {r['best_cost']:.4f}, baseline (the scene's gains) {r['baseline_cost']:.4f}")
    if r["beats_defaults"]:
        gain = 100.0 * (1.0 - r["best_cost"] / r["baseline_cost"])
        print(f"the best gains beat the defaults by {gain:.1f} % of the cost")
    else:
        print(r["why_not"])
    print(f"{len(r['trials'])} trials in {r['elapsed_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
