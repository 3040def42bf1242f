"""A classifier head over the sentence encoders' embeddings, and the hand-off threshold it is calibrated with.

Nearest-phrasing and entry-centroid cosines rank the right entry first about
as often as a trained head does, but their scores say little about when they
are wrong: on BANKING77 at ten examples an intent, answering no more than 3%
wrongly left the cosine matcher answering about half of the in-scope questions
and the head about three quarters (benchmarks/RESULTS.md, "FAQ answers").
This is MTEB's reference classifier (logistic regression on frozen
embeddings), fitted on every way of asking an entry the version knows.

Its threshold is chosen by cross-validation on the FAQ itself, never on the
evaluation questions: each phrasing is scored by a head that did not see it
(k folds), which estimates how often an answer above a threshold is wrong, and
each entry's phrasings are scored by a head trained without that entry (near
misses: questions of the operator's own domain that the FAQ does not answer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

FOLDS = 5
REGULARISATION = 10.0  # sklearn's C: little shrinkage; a few examples an entry are all there is


@dataclass(frozen=True)
class IntentHead:
    """Multinomial logistic regression: probabilities = softmax(features @ weights + bias), one column per entry."""

    weights: np.ndarray  # (features, entries)
    bias: np.ndarray  # (entries,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

    def save(self, path) -> None:
        np.savez(path, weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, path) -> "IntentHead":
        with np.load(path) as saved:
            return cls(saved["weights"].astype(np.float32), saved["bias"].astype(np.float32))


def fit_head(features: np.ndarray, labels: np.ndarray, entries: int) -> IntentHead:
    """A head over `entries` columns; an entry with no example gets a column that never wins."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(labels)
    weights = np.zeros((features.shape[1], entries), np.float32)
    bias = np.full(entries, -1e4, np.float32)
    if len(present) == 1:  # sklearn fits two classes or more; such a head always answers its one entry
        bias[present[0]] = 0.0
        return IntentHead(weights, bias)
    model = LogisticRegression(C=REGULARISATION, max_iter=3000).fit(features, labels)
    coef, intercept = model.coef_, model.intercept_
    if len(present) == 2:  # sklearn keeps one row for two classes: the second's logit against the first's
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weights[:, model.classes_] = coef.T
    bias[model.classes_] = intercept
    return IntentHead(weights, bias)


@dataclass(frozen=True)
class HeldOutScores:
    """What heads that did not see a phrasing make of it."""

    confidence: np.ndarray  # in scope: the best probability from a head trained without this phrasing
    right: np.ndarray  # in scope: whether that head's best entry was the phrasing's own
    near_miss: np.ndarray  # the best probability from a head trained without the phrasing's whole entry


def held_out_scores(features: np.ndarray, labels: np.ndarray, entries: int, topical: int, seed: int = 0) -> HeldOutScores:
    """Out-of-fold scores for every phrasing; near misses for the first `topical` entries (built-ins are always there)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), int)
    for entry in np.unique(labels):  # each entry's phrasings spread over the folds
        rows = np.flatnonzero(labels == entry)
        fold[rows] = (rng.permutation(len(rows)) + int(rng.integers(FOLDS))) % FOLDS
    confidence, right = np.zeros(len(labels), np.float32), np.zeros(len(labels), bool)
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        if not test.any() or len(np.unique(labels[train])) < 2:
            continue
        probabilities = fit_head(features[train], labels[train], entries).probabilities(features[test])
        confidence[test], right[test] = probabilities.max(1), probabilities.argmax(1) == labels[test]
    entry_fold = rng.permutation(topical) % FOLDS
    near_miss = np.full(len(labels), np.nan, np.float32)
    for k in range(FOLDS):
        out = np.isin(labels, np.flatnonzero(entry_fold == k))
        if out.any() and len(np.unique(labels[~out])) >= 2:
            near_miss[out] = fit_head(features[~out], labels[~out], entries).probabilities(features[out]).max(1)
    return HeldOutScores(confidence, right, near_miss[~np.isnan(near_miss)])


def lowest_threshold_for(confidence: np.ndarray, right: np.ndarray, max_wrong: float) -> float:
    """The lowest threshold at which answers to held-out phrasings are wrong for at most `max_wrong` of them (the wrong
    share only grows as the threshold falls)."""
    best = float(confidence.max(initial=0.0)) + 1e-6
    for threshold in np.unique(confidence)[::-1]:
        if np.sum(~right & (confidence >= threshold)) > max_wrong * len(right):
            break
        best = float(threshold)
    return best


def combined(features: Sequence[np.ndarray]) -> np.ndarray:
    """One feature row per text: each encoder's normalised embedding side by side."""
    return np.hstack(list(features)).astype(np.float32)
