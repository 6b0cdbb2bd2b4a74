"""Train a depth model from a YAML config plus key=value overrides. Resumable (--resume);
for several GPUs run it under torchrun: torchrun --nproc_per_node N -m training.train_cli
--config FILE [key=value ...].
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

EXAMPLES = """examples:
  depth-unet train --config config/train_default.yaml data.train=/data/nyu_depth_v2_labeled.mat
  depth-unet train --config config/train_synthetic_tiny.yaml --out runs/tiny optim.epochs=2
  depth-unet train --config runs/tiny/config.yaml --resume      (continues runs/tiny/last.pt)
  torchrun --nproc_per_node 4 -m training.train_cli --config config/train_nyu_gpu.yaml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="training YAML (sections model, data, loss, augment, optim, run); "
                             "optional only with --resume CKPT, which then supplies the config")
    parser.add_argument("--resume", metavar="CKPT", nargs="?", const=True, default=False,
                        help="continue a run exactly where it stopped: with no value from "
                             "<run.out_dir>/last.pt, else from the checkpoint CKPT")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="run folder for checkpoints and logs (overrides run.out_dir)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides such as optim.lr=3e-4 model.base_channels=32 "
                             "data.train=/data/nyu_depth_v2_labeled.mat (values are YAML)")


def run(args: argparse.Namespace) -> int:
    import logging

    from training.config import load_config

    resume, overrides = _split_resume(args.resume, list(args.overrides))
    if args.out is not None:
        overrides.append(f"run.out_dir={args.out}")
    if args.config is not None:
        cfg = load_config(args.config, overrides)
    elif isinstance(resume, str):
        cfg = _config_from_checkpoint(resume, overrides)
    else:
        from depth_unet_ros.errors import ConfigError

        raise ConfigError("no config: pass --config FILE (e.g. config/train_default.yaml), or "
                          "--resume CKPT to continue with the checkpoint's own config")

    from training.trainer import train

    is_main = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if is_main:
        out_dir = Path(cfg.run.out_dir).resolve()
        board = f"tensorboard --logdir {out_dir / 'tb'}" if cfg.run.tensorboard else "off"
        print(f"training into {out_dir}{' (resuming)' if resume else ''}; TensorBoard: {board}",
              flush=True)
    result = train(cfg, resume=resume)
    if is_main:
        metric = cfg.run.best_metric
        best = "no validation" if result.best_metric is None else f"{metric} {result.best_metric:.4f}"
        print(f"done: best {best}; best checkpoint {result.best_checkpoint or '-'}; "
              f"last checkpoint {result.last_checkpoint}", flush=True)
    return 0


def _split_resume(resume: bool | str, overrides: list[str]) -> tuple[bool | str, list[str]]:
    """``--resume optim.lr=1e-4`` means a bare --resume followed by an override, not a path."""
    if isinstance(resume, str) and "=" in resume and not Path(resume).exists():
        return True, [resume] + overrides
    return resume, overrides


def _config_from_checkpoint(path: str, overrides: list[str]):
    import tempfile

    import yaml

    from training.checkpoint import load_checkpoint
    from training.config import load_config

    state = load_checkpoint(path)
    with tempfile.TemporaryDirectory() as tmp:  # one code path for overrides: via a YAML file
        saved = Path(tmp) / "config.yaml"
        saved.write_text(yaml.safe_dump(state["config"]))
        return load_config(saved, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m training.train_cli`` (what torchrun launches)."""
    from depth_unet_ros.errors import DepthUnetError

    parser = argparse.ArgumentParser(prog="depth-unet train", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except DepthUnetError as exc:
        print(f"depth-unet train: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
