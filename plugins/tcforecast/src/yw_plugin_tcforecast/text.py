"""The text side of step 1: patent embeddings and topic mixtures, fitted on one period.

The paper embeds patents with RoBERTa and models topics with BERTopic; offline and on a laptop we
use their classical counterparts from scikit-learn: TF-IDF reduced by truncated SVD (latent
semantic analysis) for the embeddings, and non-negative matrix factorisation of the TF-IDF
matrix for the topics, each patent's topic weights normalised to a distribution D_p (NMF fits
in a fraction of a second where LDA took 3-13 s on the 6,400 synthetic patents). Both are
fitted once, on the patents before the training cutoff, so that the
same embedding space serves every later cutoff (and the fuser trained in it) and no text after
the cutoff shapes the vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class TextModel:
    """TF-IDF -> SVD embeddings (L2-normalised) and NMF topic mixtures of texts."""

    def __init__(self, dim: int = 32, topics: int = 20, seed: int = 0):
        self.dim, self.topics, self.seed = dim, topics, seed

    def fit(self, texts: Sequence[str]) -> TextModel:
        from sklearn.decomposition import NMF, TruncatedSVD
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        texts = list(texts)
        if len(texts) < 3:
            raise ValueError(f"the text model needs at least 3 patents to fit, got {len(texts)}")
        self.counter = CountVectorizer(min_df=2 if len(texts) >= 20 else 1, max_df=0.5)
        try:
            counts = self.counter.fit_transform(texts)
        except ValueError as exc:  # sklearn: empty vocabulary after pruning
            raise ValueError(f"the patents' texts give no vocabulary to embed: {exc}") from None
        self.tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
        weights = self.tfidf.transform(counts)
        dim = max(1, min(self.dim, counts.shape[1] - 1))
        self.svd = TruncatedSVD(dim, random_state=self.seed).fit(weights)
        topics = max(1, min(self.topics, counts.shape[1] - 1))
        self.nmf = NMF(topics, init="nndsvda", max_iter=300, random_state=self.seed).fit(weights)
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit vectors (zero for a text with no known word)."""
        return _unit(self.svd.transform(self._weights(texts)), 2)

    def topic_mix(self, texts: Sequence[str]) -> np.ndarray:
        """(n, topics) topic distributions D_p: NMF weights scaled to sum 1 (0 without words)."""
        return _unit(self.nmf.transform(self._weights(texts)), 1)

    def _weights(self, texts: Sequence[str]):
        return self.tfidf.transform(self.counter.transform(list(texts)))


def _unit(x: np.ndarray, order: int) -> np.ndarray:
    norms = np.linalg.norm(x, ord=order, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
