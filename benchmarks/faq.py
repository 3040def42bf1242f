"""FAQ matching without a fine-tune: each encoder set on each evaluation FAQ, in one run.

For every `configs/faq/<name>.csv` with a `<name>_eval.jsonl` beside it, each
encoder set (all-MiniLM-L6-v2 alone, all-mpnet-base-v2 alone, both averaged)
is calibrated as the agent does at start-up (`answer.confidence_threshold:
auto`), then every held-out question goes through the answerer as one turn of
a call. The pair runs twice: with both encoders on every turn, and as the agent
runs it, all-MiniLM-L6-v2 alone where its fast gate says it is sure. Prints
top-1, hand-off precision, off-topic recall and answered wrong, how many turns
the first encoder decided alone, and the time a turn takes (one thread).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

FAQ_DIR = Path(__file__).resolve().parent.parent / "configs" / "faq"


def main(argv: list[str] | None = None) -> int:
    from agent.answer.answerer import FaqAnswerer
    from agent.answer.calibrate import calibrate_untuned, evaluate
    from agent.answer.encoders import ENCODERS, MINILM, MPNET, load_encoder
    from agent.answer.faq import load_faq
    from agent.answer.finetune import check_eval_file

    parser = argparse.ArgumentParser(prog="benchmarks.faq", description=__doc__)
    parser.add_argument("--faq", action="append", help="FAQ name in configs/faq (repeatable; default: every one with an _eval.jsonl)")
    args = parser.parse_args(argv)
    names = args.faq or sorted(p.name.removesuffix("_eval.jsonl") for p in FAQ_DIR.glob("*_eval.jsonl"))
    encoders = {name: load_encoder(name) for name in ENCODERS}
    sets = {MINILM: ((MINILM,), False), MPNET: ((MPNET,), False), f"{MINILM} + {MPNET}, every turn": ((MINILM, MPNET), False),
            f"{MINILM} + {MPNET}, {MINILM} alone when sure (default)": ((MINILM, MPNET), True)}
    print("| FAQ | encoders | top-1 (in scope) | hand-off precision | off-topic recall | answered wrong | decided by the first encoder alone "
          "| ms a turn, median (p95) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        entries = load_faq(FAQ_DIR / f"{name}.csv")
        in_scope, off_topic = check_eval_file(FAQ_DIR / f"{name}_eval.jsonl", entries)
        for label, (chosen, cascade) in sets.items():
            answerer = FaqAnswerer(entries, [encoders[e] for e in chosen])
            calibrate_untuned(answerer)
            if not cascade:
                answerer.gate = None
            turns = []
            for question, _ in in_scope[:40]:  # timed before the evaluation: a turn's words are new to the answerer
                started = time.perf_counter()
                answerer.answer(question)
                turns.append(1000 * (time.perf_counter() - started))
            report = evaluate(answerer, in_scope, off_topic)
            questions = [q for q, _ in in_scope] + list(off_topic)
            fast = np.mean([answerer.fast_decision(q) is not None for q in questions]) if answerer.gate else 0.0
            print(f"| {name} | {label} | {report.top1_accuracy:.1%} | {report.handoff_precision:.1%} | {report.off_topic_recall:.1%} | "
                  f"{report.wrong:.1%} | {fast:.0%} | {statistics.median(turns):.0f} ({np.percentile(turns, 95):.0f}) |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
