"""FAQ matching without a fine-tune: each encoder set on each evaluation FAQ, in one run.

For every `configs/faq/<name>.csv` with a `<name>_eval.jsonl` beside it, each
encoder set (all-MiniLM-L6-v2 alone, all-mpnet-base-v2 alone, both averaged)
is calibrated as the agent does at start-up (`answer.confidence_threshold:
auto`), then every held-out question goes through the answerer as one turn of
a call. The pair runs twice: with both encoders on every turn, and as the agent
runs it, all-MiniLM-L6-v2 alone where its fast gate says it is sure. Prints
top-1, hand-off precision, off-topic recall and answered wrong, how many turns
the first encoder decided alone, and the time a turn takes (one thread).

`--set banking77 --shots K`: a bank FAQ made from BANKING77's training split
(benchmarks/intent_sets.py; 10 intents held out, whose test questions must be
handed off), fine-tuned with `avatar-agent finetune-faq` itself, then the
3,080 test questions: base against fine-tuned in one run, the ms a turn of
each, and the risk-coverage table of both.
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
    parser.add_argument("--set", choices=["banking77"], help="a public intent benchmark instead: a FAQ made from its training split, "
                        "fine-tuned, scored on its test split")
    parser.add_argument("--shots", default="10", help="--set: paraphrases an entry, a number or 'all' (default: %(default)s)")
    parser.add_argument("--held-out", type=int, default=10, help="--set: intents left out of the FAQ, to be handed off (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=120, help="--set: fine-tuning steps (default: finetune-faq's, %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="--set: which intents are held out, and the fine-tune's seed")
    parser.add_argument("--config", default=None, help="--set: YAML config for the encoders and threads (default: configs/agent.yaml)")
    args = parser.parse_args(argv)
    if args.set:
        return public_set(args)
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



def public_set(args) -> int:
    """Base against fine-tuned on a public intent benchmark, through the project's own fine-tune command."""
    import json
    import tempfile

    from agent.answer.answerer import FaqAnswerer
    from agent.answer.calibrate import calibrate_untuned, format_risk_coverage
    from agent.answer.encoders import load_encoder
    from agent.answer.faq import load_faq
    from agent.answer.registry import load_version
    from agent.cli import main as cli
    from agent.config import DEFAULT_CONFIG, load_config

    from .intent_sets import banking77, write

    shots = None if args.shots == "all" else int(args.shots)
    config_path = args.config or str(DEFAULT_CONFIG)
    config = load_config(config_path)
    made = banking77(shots, args.held_out, args.seed)
    print(f"BANKING77: {len(made.faq_rows)} entries ({args.shots} paraphrases each), {len(made.in_scope)} in-scope test questions, "
          f"{len(made.off_topic)} of {len(made.held_out)} held-out intents ({', '.join(made.held_out)})", flush=True)
    with tempfile.TemporaryDirectory(prefix="faq-bench-") as tmp:
        faq_path, eval_path = write(made, Path(tmp))
        started = time.perf_counter()
        code = cli(["finetune-faq", "--faq", str(faq_path), "--eval", str(eval_path), "--tenant", "banking77", "--versions-dir", tmp,
                    "--steps", str(args.steps), "--seed", str(args.seed), "--config", config_path])
        if code:
            return code
        minutes = (time.perf_counter() - started) / 60
        folder = Path(tmp) / "banking77" / "v1"
        manifest = json.loads((folder / "manifest.json").read_text())
        entries = load_faq(faq_path)
        encoders = {name: load_encoder(name) for name in config.answer.encoders}
        base = FaqAnswerer(entries, list(encoders.values()))
        calibrate_untuned(base)
        version = load_version(entries, folder, manifest, "", shared=encoders)
        turns = {"base": _turn_ms(base, made.in_scope[1::50]), "fine-tuned": _turn_ms(version, made.in_scope[2::50])}
    print(f"\nBANKING77, {args.shots} paraphrases an entry, seed {args.seed}: fine-tune and evaluation {minutes:.1f} min in all")
    print("| answerer | top-1 (in scope) | answered wrongly (in scope) | hand-off precision | held-out intents handed off "
          "| asked X or Y (right one offered) | ms a turn, median (p95) |")
    print("|---|---|---|---|---|---|---|")
    for name, m in manifest["metrics"].items():
        kind = "fine-tuned" if name.startswith("fine-tuned (this version") else "base" if name == f"base {' + '.join(config.answer.encoders)}" else None
        timing = f"{statistics.median(turns[kind]):.0f} ({np.percentile(turns[kind], 95):.0f})" if kind else ""
        print(f"| {name} | {m['top1_accuracy']:.1%} | {m['wrong']:.1%} | {m['fallback_precision']:.1%} | {m['fallback_recall']:.1%} "
              f"| {m['clarified']:.1%} | {timing} |")
    for title, key in (("base", "risk_coverage_base"), ("fine-tuned", "risk_coverage")):
        print(f"\nrisk-coverage, {title} (all {len(made.in_scope) + len(made.off_topic)} questions; 'answered wrongly' counts "
              "an off-topic question answered too):")
        print("\n".join(format_risk_coverage(manifest[key])))
    return 0


def _turn_ms(answerer, questions) -> list[float]:
    """Time of one turn each, on questions the answerer has not read yet."""
    times = []
    for question, _ in questions:
        started = time.perf_counter()
        answerer.answer(question)
        times.append(1000 * (time.perf_counter() - started))
    return times


if __name__ == "__main__":
    raise SystemExit(main())
