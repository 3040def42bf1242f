"""The classifier head a fine-tuned version decides with (agent/answer/head.py): it reproduces the classifier it was
fitted as, covers every entry, and its cross-validated threshold keeps wrong answers to the share asked for."""
from __future__ import annotations

import numpy as np
import pytest

from agent.answer.head import IntentHead, fit_head, held_out_scores, lowest_threshold_for


def _clusters(entries: int, per_entry: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised points around one random direction an entry, as sentence embeddings of ways of asking would be."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(entries, 16))
    labels = np.repeat(np.arange(entries), per_entry)
    points = centres[labels] + spread * rng.normal(size=(len(labels), 16))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), labels


def test_the_head_gives_the_probabilities_of_the_classifier_it_was_fitted_as():
    from sklearn.linear_model import LogisticRegression

    from agent.answer.head import REGULARISATION

    features, labels = _clusters(5, 8, 0.8)
    head = fit_head(features, labels, entries=5)
    reference = LogisticRegression(C=REGULARISATION, max_iter=3000).fit(features, labels)
    assert np.allclose(head.probabilities(features), reference.predict_proba(features), atol=1e-4)


def test_an_entry_without_examples_never_wins_and_one_or_two_known_entries_still_work():
    features, labels = _clusters(3, 6, 0.3)
    head = fit_head(features[labels != 1], labels[labels != 1], entries=3)  # entry 1 has no example
    probabilities = head.probabilities(features)
    assert probabilities.shape == (len(labels), 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert probabilities[:, 1].max() < 1e-6 and (probabilities.argmax(1)[labels != 1] == labels[labels != 1]).all()
    only = fit_head(features[labels == 2], labels[labels == 2], entries=3)
    assert (only.probabilities(features).argmax(1) == 2).all()


def test_a_saved_head_loads_as_it_was(tmp_path):
    features, labels = _clusters(4, 5, 0.5)
    head = fit_head(features, labels, entries=6)
    head.save(tmp_path / "head.npz")
    assert np.allclose(IntentHead.load(tmp_path / "head.npz").probabilities(features), head.probabilities(features))


def test_the_lowest_threshold_keeps_wrong_answers_at_most_to_the_share_asked():
    confidence = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    right = np.array([True, True, True, False, True, True, False, True, False, False])
    assert lowest_threshold_for(confidence, right, 0.0) == 0.8  # the first wrong answer is at 0.7
    assert lowest_threshold_for(confidence, right, 0.1) == 0.5  # one wrong answer in ten allowed: the second is at 0.4
    assert lowest_threshold_for(confidence, right, 1.0) == 0.1
    assert lowest_threshold_for(confidence[right], right[right], 0.0) == 0.3  # never wrong: answer all


@pytest.mark.parametrize("spread", [0.4, 1.2])
def test_cross_validated_scores_say_how_often_the_head_is_wrong_on_what_it_did_not_see(spread):
    """Thresholded on its own folds, the head answers new questions of its entries with about the wrong share asked
    for, and is less sure of an entry it never saw than of its own entries' questions."""
    features, labels = _clusters(12, 10, spread, seed=1)
    unseen, unseen_labels = _clusters(12, 40, spread, seed=1)  # the same centres: new questions of the same entries
    held = held_out_scores(features, labels, entries=12, topical=12, seed=0)
    assert held.confidence.shape == labels.shape and held.near_miss.shape == labels.shape
    threshold = lowest_threshold_for(held.confidence, held.right, 0.05)
    probabilities = fit_head(features, labels, 12).probabilities(unseen)
    answered = probabilities.max(1) >= threshold
    wrong = np.mean(answered & (probabilities.argmax(1) != unseen_labels))
    assert wrong <= 0.10 and answered.mean() > 0.3
    assert np.median(held.near_miss) < np.median(held.confidence)
