"""Entry-point groups: one per interface, plus yw.hooks for pluggy modules.

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
HOOKS_GROUP = "yw.hooks"
INTERFACE_OF_GROUP: dict[str, str] = {group: kind for kind, group in GROUPS.items()}
