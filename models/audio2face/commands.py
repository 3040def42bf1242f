"""The face model's jobs on the `avatar-agent` command line: prepare-data, train, evaluate."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from .kinds import FEATURE_KINDS
from .runtime import WEIGHTS_DIR

DATA_DIR = Path("build/audio2face/data")
RUN_DIR = Path("build/audio2face/run")
SHARED_GRID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "grid-lipsync"


def _prepare_data(args) -> int:
    from .data.build import build

    manifest = build(args.out, sentences_per_variant=args.sentences, workers=args.workers, agent_voice=args.agent_voice)
    for split, info in manifest["splits"].items():
        print(f"{split:5s}: {info['utterances']:5d} utterances, {info['hours']:.2f} h, voices: {', '.join(info['voices'])}")
    print(f"{len(manifest['errors'])} sentences skipped (alignment failed); built in {manifest['seconds_to_build']} s")
    print(f"manifest: {args.out / 'manifest.json'}   example plot: {args.out / 'example.png'}")
    return 0


def _real_speakers(path: Path | None) -> Path | None:
    if path is None or str(path) == "none":
        return None
    if not path.exists():
        print(f"note: no real-speaker clips at {path}; the checkpoint is chosen on the validation voices")
        return None
    return path


def _train(args) -> int:
    import torch

    from .train.export import export_onnx
    from .train.loop import new_model, train

    summary = train(args.data, args.out, features=args.features, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                    threads=args.threads, seed=args.seed, workers=args.workers, real_speakers=_real_speakers(args.real_speakers))
    model = new_model(args.features)
    model.load_state_dict(torch.load(args.out / "checkpoint.pt"))
    export_dir = args.out / "model"
    export_onnx(model, export_dir, summary)
    print(json.dumps({k: summary[k] for k in ("best", "selected_on", "leave_one_clip_out") if k in summary}, indent=1))
    print(f"plots: {args.out / 'loss.png'}, {args.out / 'prediction.png'}\nONNX model: {export_dir}")
    if args.ship:
        for name in ("audio2face.onnx", "audio2face.json"):
            shutil.copy2(export_dir / name, WEIGHTS_DIR / name)
        print(f"copied to {WEIGHTS_DIR} (the model the agent uses by default)")
    else:
        print(f"to serve it: set animate.model_dir: {export_dir.resolve()} in configs/agent.yaml")
    return 0


def _evaluate(args) -> int:
    from .evaluate import evaluate, format_table

    grid = args.real_speakers if args.real_speakers and args.real_speakers.exists() else None
    if grid is None:
        print(f"note: no real-speaker clips at {args.real_speakers}; only held-out voices are measured")
    report = evaluate(args.model_dir, grid, per_voice=args.per_voice, out=args.out, plot=args.plot if grid else None,
                      agent_voice=args.agent_voice, compare=args.compare)
    print(format_table(report))
    print(f"\nJSON: {args.out}" + (f"   plot: {args.plot}" if grid else ""))
    return 0


def add_commands(jobs: argparse._SubParsersAction, agent_voice=None) -> None:
    """The model's jobs; `agent_voice(name, threads, length_scale)` (the agent's voices: Piper joe, Kokoro) is what
    prepare-data speaks with besides flite and espeak."""
    prep = jobs.add_parser("prepare-data", help="build the labelled audio-to-face corpus offline",
                           description="Synthesise speech with flite, espeak-ng, Piper and Kokoro voices, align phones, label ARKit curves, augment, pack.")
    prep.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: %(default)s)")
    prep.add_argument("--sentences", type=int, default=24, help="sentences per voice variant (default: %(default)s)")
    prep.add_argument("--workers", type=int, default=2, help="processes (default: %(default)s)")
    prep.set_defaults(run=_prepare_data, agent_voice=agent_voice)

    tr = jobs.add_parser("train", help="train the audio-to-face model and export it to ONNX",
                         description="Train on the prepared corpus, keep the checkpoint that does best on real speakers' video curves "
                                     "(or, without them, on the validation voices), plot, export ONNX.")
    tr.add_argument("--data", type=Path, default=DATA_DIR, help="prepared corpus (default: %(default)s)")
    tr.add_argument("--out", type=Path, default=RUN_DIR, help="run folder for checkpoint, plots and model (default: %(default)s)")
    tr.add_argument("--features", choices=FEATURE_KINDS, default=FEATURE_KINDS[0],
                    help="what the model hears: the Whisper tiny.en encoder or log-mel (default: %(default)s)")
    tr.add_argument("--steps", type=int, default=4000, help="optimiser steps (default: %(default)s)")
    tr.add_argument("--batch-size", type=int, default=24)
    tr.add_argument("--lr", type=float, default=2e-3)
    tr.add_argument("--threads", type=int, default=1, help="torch threads; 1 is fastest on a busy 2-core machine")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--real-speakers", type=Path, default=SHARED_GRID,
                    help="clips with video-estimated curves that choose the checkpoint; 'none': the validation voices do (default: %(default)s)")
    tr.add_argument("--workers", type=int, default=2, help="processes computing the features once per corpus (default: %(default)s)")
    tr.add_argument("--ship", action="store_true", help=f"also copy the model to {WEIGHTS_DIR} (the default the agent loads)")
    tr.set_defaults(run=_train)

    ev = jobs.add_parser("evaluate", help="compare the face model with two baselines; print a table, write JSON",
                         description="Held-out voices (mouth MAE, viseme accuracy), real speakers (jawOpen and mouth-openness correlation), speed.")
    ev.add_argument("--model-dir", type=Path, default=WEIGHTS_DIR, help="folder with audio2face.onnx (default: the shipped model)")
    ev.add_argument("--real-speakers", type=Path, default=SHARED_GRID, help="GRID clips with video-estimated curves (default: %(default)s)")
    ev.add_argument("--compare", type=Path, nargs="*", default=[], metavar="MODEL_DIR",
                    help="other trained models to measure in the same run (say, the one shipped before)")
    ev.add_argument("--per-voice", type=int, default=24, help="held-out sentences per test voice (default: %(default)s)")
    ev.add_argument("--out", type=Path, default=Path("build/audio2face/evaluation.json"), help="JSON report (default: %(default)s)")
    ev.add_argument("--plot", type=Path, default=Path("build/audio2face/real_speakers.png"), help="plot of real-speaker curves (default: %(default)s)")
    ev.set_defaults(run=_evaluate, agent_voice=agent_voice)
