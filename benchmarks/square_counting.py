"""Square against none, AAA and UniG, counted four ways: the table of issue 20.

Setting (`yw-core bench defense`'s digits defaults): the digits reference model (zoo, seed 0),
L-inf eps 0.2, 1,000 queries per point, test points 0-199, and the bench's 150 calibration
points (the last of the test split, from `split_test`) given to each defense's protect(). Per
attack seed, four robust accuracies (%):

- `ta-first`: torchattacks 3.5.1's Square (p_init 0.05, margin loss, n_queries 999 after its
  first query, as ours), counted at the first fooled query: a recording wrapper matches every
  query row to its test point (the nearest in L-inf, within eps) and marks the point fooled the
  first time an answer misclassifies it;
- `ta-recheck`: the same run, counted as torchattacks counts: by its final query of each point's
  x_adv (the last answer the wrapper saw for that point);
- `ours-first`: our Square with its defaults, as `yw-core bench defense` runs it (p_init 0.05,
  p schedule over n_iters 10,000), on the 200 points in one batch; `AttackResult.success` (the
  bench's rule);
- `ours-requery`: our x_adv re-queried R times (one batch of the 200 each time); the share of
  correct answers.

    python benchmarks/square_counting.py [--seeds 0 1 2] [--requery 10] [--defenses none aaa unig]

Needs torchattacks (`pip install torchattacks==3.5.1 --no-deps`). On a deterministic,
batch-independent model the four agree up to the attacks' own differences; on UniG (randomized,
argmax depends on the batch) an answer that misclassified once is often right on the next query.
"""

from __future__ import annotations

import argparse
import time

import torch
import torchattacks
from torch import nn

from yw_bench.defense import DEFAULT_ARCH, DefenseBenchConfig, split_test
from yw_core.data import load_dataset
from yw_core.runtime import Runtime
from yw_core.zoo import reference_model
from yw_plugin_aaa import AAA
from yw_plugin_attacks.square import Square
from yw_plugin_unig import UniG

EPS = 0.2
BUDGET = 1000
P_INIT = 0.05
DEFENSES = {"none": None, "aaa": AAA, "unig": UniG}


class Recorder(nn.Module):
    """Answers with `model`, and records per test point whether any answer, and the last one,
    misclassified it; each query row is matched to its nearest test point in L-inf."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        super().__init__()
        self.model = model
        self.x, self.y = x.flatten(1), y
        self.ever_wrong = torch.zeros(len(y), dtype=torch.bool)
        self.last_wrong = torch.zeros(len(y), dtype=torch.bool)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        out = self.model(q)
        with torch.no_grad():
            gap = (q.flatten(1)[:, None, :] - self.x[None]).abs().amax(2)
            dist, who = gap.min(1)
            assert (dist <= EPS + 1e-5).all(), "a query row is not within eps of a test point"
            wrong = out.argmax(1) != self.y[who]
            self.ever_wrong[who] |= wrong
            self.last_wrong[who] = wrong
        return out


def protected(name: str, model, calibration, runtime: Runtime) -> nn.Module:
    runtime.seed_everything()
    if DEFENSES[name] is None:
        return model
    return DEFENSES[name]().protect(model, data=calibration, runtime=runtime)


def row(name: str, seed: int, model, x, y, calibration, requery: int) -> dict[str, float]:
    runtime = Runtime(device="cpu", seed=seed, distributed=False)
    recorder = Recorder(protected(name, model, calibration, runtime), x, y)
    attack = torchattacks.Square(
        recorder,
        norm="Linf",
        eps=EPS,
        n_queries=BUDGET - 1,
        p_init=P_INIT,
        loss="margin",
        resc_schedule=True,
        seed=seed,
    )
    attack(x, y)
    defended = protected(name, model, calibration, runtime)
    result = Square().run(defended, x, y, eps=EPS, norm="linf", budget=BUDGET, runtime=runtime)
    with torch.no_grad():
        correct = torch.stack([defended(result.x_adv).argmax(1) == y for _ in range(requery)])
    return {
        "ta-first": 100 * (1 - recorder.ever_wrong.float().mean().item()),
        "ta-recheck": 100 * (1 - recorder.last_wrong.float().mean().item()),
        "ours-first": 100 * (1 - result.success.float().mean().item()),
        "ours-requery": 100 * correct.float().mean().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--requery", type=int, default=10)
    parser.add_argument("--defenses", nargs="+", default=list(DEFENSES), choices=list(DEFENSES))
    args = parser.parse_args()

    config = DefenseBenchConfig(n=200)
    model = reference_model("digits", DEFAULT_ARCH["digits"], seed=0, progress=False).eval()
    x, y, calibration = split_test(load_dataset("digits", "test", seed=0), config)
    start = time.perf_counter()
    print("defense  seed  ta-first  ta-recheck  ours-first  ours-requery")
    for name in args.defenses:
        for seed in args.seeds:
            r = row(name, seed, model, x, y, calibration, args.requery)
            print(
                f"{name:<7}  {seed:>4}  {r['ta-first']:>8.1f}  {r['ta-recheck']:>10.1f}  "
                f"{r['ours-first']:>10.1f}  {r['ours-requery']:>12.1f}",
                flush=True,
            )
    print(f"wall-clock: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
