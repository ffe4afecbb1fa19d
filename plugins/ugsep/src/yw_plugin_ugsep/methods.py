"""The RecModel plugins: `rankmixer` (the baseline) and `ugsep` (RankMixer with UG-Separation).

Defaults: RankMixer-100M's T = 16 tokens and L = 2 layers with the width D scaled from 768 to
128 for a CPU; k = 4 (the readings give no k), 16-wide field embeddings, a 32-unit head. UG-Sep
adds U:G = 1:1 (the deployed setting) and Information Compensation.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from yw_core.interfaces import Capabilities, MethodConfig, Paper, RecModel, RecSchema, Variant
from yw_plugin_ugsep.model import RankMixerNet

RANKMIXER_PAPER = Paper(
    title="RankMixer: Scaling Up Ranking Models in Industrial Recommenders",
    authors=(
        *("Zhu", "Fan", "Zhu", "Jiang", "Wang", "Han", "Ding", "Wang", "Zhao", "Gong", "Yang"),
        *("Chai", "Chen", "Zheng", "Chen", "Zhang", "Zhou", "Xu", "Yang", "Wu", "Liu"),
    ),
    year=2025,
    venue="arXiv",
    arxiv_id="2507.15551",
)
UGSEP_PAPER = Paper(
    title="Compute Only Once: UG-Separated TokenMixer for Efficient Large Recommendation Models",
    authors=("Lu", "Chai", "Bai", "Wu", "Zheng"),  # as registry.toml records them (of 18)
    year=2026,
    venue="arXiv",
    arxiv_id="2602.10455",
)


class RankMixerConfig(MethodConfig):
    """The network's sizes; the token-mixing layer has no parameters of its own."""

    tokens: int = Field(16, ge=2, le=256, description="T, tokens per sample (RankMixer-100M: 16)")
    width: int = Field(
        128,
        ge=2,
        le=8192,
        description="D, token width, a multiple of tokens (RankMixer-100M: 768; 128 for a CPU)",
    )
    layers: int = Field(2, ge=1, le=64, description="L, mixer layers (RankMixer-100M: 2)")
    ffn_ratio: int = Field(
        4, ge=1, le=16, description="k, per-token FFN hidden width / D (not published; 4)"
    )
    embedding_dim: int = Field(16, ge=1, le=1024, description="width of each field's embedding")
    head_hidden: int = Field(32, ge=1, le=8192, description="hidden units of the click head")

    @model_validator(mode="after")
    def _heads_fit(self):
        if self.width % self.tokens:
            raise ValueError(
                f"width {self.width} must be a multiple of tokens {self.tokens}: token mixing "
                "splits every token into T heads"
            )
        return self


class UGSepConfig(RankMixerConfig):
    """RankMixer's sizes plus the U:G token split and Information Compensation."""

    ug_ratio: str = Field(
        "1:1",
        pattern=r"^[1-9]\d*:[1-9]\d*$",
        description="user:item tokens, U:G (1:1 deployed; the paper also runs 1:2 to 5:1)",
    )
    compensation: bool = Field(
        True, description="Information Compensation: the masked user mix, projected, added to G"
    )

    @property
    def ratio(self) -> tuple[int, int]:
        """(U, G) of `ug_ratio`."""
        u, g = map(int, self.ug_ratio.split(":"))
        return u, g

    @property
    def user_tokens(self) -> int:
        u, g = self.ratio
        return self.tokens * u // (u + g)

    @model_validator(mode="after")
    def _ratio_fits(self):
        u, g = self.ratio
        if (self.tokens * u) % (u + g):
            raise ValueError(
                f"ug_ratio {self.ug_ratio} does not split tokens={self.tokens} into whole "
                f"numbers of user and item tokens"
            )
        return self


class RankMixer(RecModel):
    """RankMixer: tokens from all fields, parameter-free token mixing, per-token FFNs."""

    name = "rankmixer"
    summary = "RankMixer: token mixing and per-token FFNs over all fields (UG-Sep's baseline)"
    paper = RANKMIXER_PAPER
    status = "baseline"
    capabilities = Capabilities(training=True, deterministic=True)
    Config = RankMixerConfig

    def network_sizes(self) -> dict:
        return {k: getattr(self.config, k) for k in RankMixerConfig.model_fields}

    def build(self, schema: RecSchema) -> RankMixerNet:
        return RankMixerNet(schema, **self.network_sizes())


class UGSep(RankMixer):
    """UG-Sep: user tokens kept free of item information in every layer, computed once per
    request and reused across its candidates."""

    name = "ugsep"
    summary = "UG-Sep: user-side tokens computed once per request and reused over candidates"
    paper = UGSEP_PAPER
    status = "experimental"
    Config = UGSepConfig
    variants = {
        "ugsep-no-ic": Variant(
            label="UG-Sep without Information Compensation", overrides={"compensation": False}
        )
    }

    def build(self, schema: RecSchema) -> RankMixerNet:
        return RankMixerNet(
            schema,
            **self.network_sizes(),
            user_tokens=self.config.user_tokens,
            compensation=self.config.compensation,
        )
