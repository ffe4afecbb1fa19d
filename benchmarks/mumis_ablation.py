"""MU-Mis on the `bench unlearn` digits models: δ against class-wise forgetting, and the step cap
against random-sample forgetting, per seed (the tables of docs/methods/mumis.md, Limits).

    python benchmarks/mumis_ablation.py                  # seeds 0-9 (about 10 minutes on 2 cores)
    python benchmarks/mumis_ablation.py --seeds 0 1      # a quicker look

Each seed trains the bench's original model (`yw_bench.unlearn.train_original`) and runs MU-Mis
from it: class 3 with δ = 1.3 and 2.0 (cap 200 steps), a random 10% at caps 100 and 200.
Prints one line per run: retain, forget and test accuracy (%), the steps taken and what stopped it.
"""

from __future__ import annotations

import argparse
import warnings

from yw_bench.unlearn import UnlearnBenchConfig, evaluate, load_data, split, train_original
from yw_core.runtime import Runtime
from yw_plugin_mumis import MUMis

RUNS = {
    "class": [{"delta": 1.3, "max_steps": 200}, {"delta": 2.0, "max_steps": 200}],
    "random": [{"max_steps": 100}, {"max_steps": 200}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    config = UnlearnBenchConfig(device="cpu")
    train, test, _ = load_data(config)
    print("seed  setting  config                          stopped_by  steps     RA     FA     TA")
    for seed in args.seeds:
        runtime = Runtime(device="cpu", seed=seed, distributed=False)
        original = train_original(config, train, runtime, 10)
        for setting, runs in RUNS.items():
            forget, retain, held_out = split(config, setting, train, test, seed)
            for overrides in runs:
                method = MUMis(**overrides)
                runtime.seed_everything()
                out = method.unlearn(original, forget, None, runtime=runtime)
                e = evaluate(out, forget, retain, held_out, runtime)
                given = ", ".join(f"{k}={v}" for k, v in overrides.items())
                print(
                    f"{seed:>4}  {setting:<7}  {given:<30}  {method.stopped_by:<10}  "
                    f"{len(method.trace) - 1:>5}  {e['ra']:5.1f}  {e['fa']:5.1f}  {e['ta']:5.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
