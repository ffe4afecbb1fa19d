"""MU-Mis's stopping rule (Algorithm 1): stop once the irrelevant-class sensitivity S_o has risen
to more than δ times its value before unlearning (and above its lowest value so far)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StoppingRule:
    """Feed `update(s_o)` the S_o after each step; it returns True when unlearning should stop.

    `s_o0` is S_o of the original model. `above_minimum` adds the condition one reading note
    gives (S_o above the lowest value recorded so far, S_o(0) included)."""

    delta: float
    s_o0: float
    above_minimum: bool = True
    minimum: float = field(init=False)

    def __post_init__(self) -> None:
        self.minimum = self.s_o0

    def ratio(self, s_o: float) -> float:
        """S_o / S_o(0)."""
        return s_o / self.s_o0

    def update(self, s_o: float) -> bool:
        stop = self.ratio(s_o) > self.delta and (not self.above_minimum or s_o > self.minimum)
        self.minimum = min(self.minimum, s_o)
        return stop
