"""Where a classifier head's hand-off line should sit: BANKING77 at K paraphrases (10 intents held out), the head
fitted as a fine-tune fits it (un-tuned encoders), and the line each near-miss share would give, scored on the test
split: top-1, answered wrongly (in scope and of all questions), held-out intents handed off.

    python -m benchmarks.handoff_sweep --shots 10
"""
from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.handoff_sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=10, help="paraphrases an entry (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="which intents are held out (default: %(default)s)")
    args = parser.parse_args(argv)

    import torch

    from agent.answer.answerer import FaqAnswerer
    from agent.answer.calibrate import HEAD_MAX_WRONG, fit_heads
    from agent.answer.encoders import ENCODERS, RememberingEncoder, load_encoder
    from agent.answer.faq import FaqEntry
    from agent.answer.finetune import head_examples
    from agent.answer.head import held_out_scores, lowest_threshold_for
    from agent.answer.phrasings import make_phrasings

    from .intent_sets import banking77

    torch.set_num_threads(1)
    made = banking77(args.shots, 10, args.seed)
    entries = [FaqEntry(r["question"], r["answer"], tuple(p for p in r["paraphrases"].split("|") if p)) for r in made.faq_rows]
    answerer = FaqAnswerer(entries, [RememberingEncoder(load_encoder(name)) for name in ENCODERS])
    examples = head_examples(answerer.entries, make_phrasings(entries, answerer.scorer, args.seed))
    fit_heads(answerer, examples, args.seed)
    labels = np.array([entry for _, entry in examples])
    held = held_out_scores(answerer.features([text for text, _ in examples]), labels, len(answerer.entries), len(entries), args.seed)
    questions = [q for q, _ in made.in_scope] + made.off_topic
    scores = np.concatenate([answerer.scorer.scores(questions[i:i + 256]) for i in range(0, len(questions), 256)])
    inside = len(made.in_scope)
    right = np.array([i < inside and answerer.entries[b].question == made.in_scope[i][1] for i, b in enumerate(scores.argmax(1))])
    confidence = scores.max(1)
    floor = lowest_threshold_for(held.confidence, held.right, HEAD_MAX_WRONG)
    print(f"BANKING77, {args.shots} paraphrases, seed {args.seed}; the cross-validated wrong-answer line alone: {floor:.3f}")
    print("| near-miss share | line | top-1 | wrong (in scope) | wrong (of all) | held-out handed off |\n|---|---|---|---|---|---|")
    for share in (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        line = max(floor, float(np.quantile(held.near_miss, share)))
        answered = confidence >= line
        print(f"| {share:.2f} | {line:.3f} | {np.mean(answered[:inside] & right[:inside]):.1%} | {np.mean(answered[:inside] & ~right[:inside]):.1%} "
              f"| {np.mean(answered & ~right):.1%} | {np.mean(~answered[inside:]):.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
