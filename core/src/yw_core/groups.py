"""Entry-point groups: one per method interface, `yw.benches` for benchmark protocols, and
`yw.hooks` for pluggy modules.

Kept free of imports so `yw-core list` can read it without loading pydantic or torch.
"""

GROUPS: dict[str, str] = {
    "defense": "yw.defenses",
    "weight_optimizer": "yw.weight_optimizers",
    "ood_scorer": "yw.ood_scorers",
    "unlearner": "yw.unlearners",
    "rec_model": "yw.rec_models",
    "forecaster": "yw.forecasters",
    "interpreter": "yw.interpreters",
    "continual_learner": "yw.continual_learners",
    "attack": "yw.attacks",
}
BENCH = "bench"  # the kind of a `yw.benches` entry: a benchmark protocol, not a method
BENCH_GROUP = "yw.benches"
HOOKS_GROUP = "yw.hooks"
KINDS: dict[str, str] = {**GROUPS, BENCH: BENCH_GROUP}  # every kind the registry lists
INTERFACE_OF_GROUP: dict[str, str] = {group: kind for kind, group in KINDS.items()}
