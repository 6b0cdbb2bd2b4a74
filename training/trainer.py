"""The training loop: AdamW + warmup/cosine, AMP on CUDA, DDP under torchrun, exact resume.

Run state lives in ``run.out_dir``: ``last.pt`` (every epoch), ``best.pt`` (when the validation
metric improves), ``config.yaml``, ``metrics.jsonl`` (one line per epoch) and TensorBoard logs
in ``tb/``. Only rank 0 writes files and logs; every rank trains.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from depth_unet_ros.errors import ConfigError, DepthUnetError, ModelLoadError
from depth_unet_ros.evaluation.metrics import EvalProtocol, MetricAverager, depth_metrics
from training.checkpoint import (CHECKPOINT_FORMAT, capture_rng_state, load_checkpoint,
                                 restore_rng_state, save_checkpoint)
from training.config import TrainConfig, config_to_dict, is_higher_better, save_config_yaml
from training.data import build_dataloaders
from training.distributed import init_distributed, select_device
from training.losses import build_loss
from training.model import build_model
from training.optim import amp_dtype, build_optimizer, build_scheduler

log = logging.getLogger(__name__)

LAST, BEST, METRICS_FILE = "last.pt", "best.pt", "metrics.jsonl"


class TrainingDivergedError(DepthUnetError):
    """The loss or the gradients became NaN/inf; the last good checkpoint is left untouched."""


@dataclass
class TrainResult:
    best_metric: float | None  # best validation value of run.best_metric; None without validation
    last_checkpoint: Path | None  # None on ranks other than 0
    history: list[dict] = field(default_factory=list)  # the metrics.jsonl records of this call
    step_losses: list[float] = field(default_factory=list)  # loss of every step of this call
    best_checkpoint: Path | None = None


# --- builders --------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- the trainer -----------------------------------------------------------------------------

class Trainer:
    """Owns the model, data, optimiser and run files of one training run."""

    def __init__(self, cfg: TrainConfig, resume: bool | str | Path = False) -> None:
        self.cfg = cfg
        self.device = select_device(cfg.run.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.dist = init_distributed(self.device)
        self.out_dir = Path(cfg.run.out_dir)
        seed_everything(cfg.run.seed)
        self.model = build_model(cfg.model).to(self.device)
        self.loaders = build_dataloaders(cfg, self.dist.rank, self.dist.world_size)
        self.steps_per_epoch = min(len(self.loaders.train), cfg.optim.steps_per_epoch or sys.maxsize)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim,
                                         self.steps_per_epoch * cfg.optim.epochs)
        self.amp_dtype = amp_dtype(cfg.run, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.loss_fn = build_loss(cfg.loss)
        self.epoch, self.global_step, self.best_metric = 0, 0, None
        self.step_losses: list[float] = []  # every step of this process's run, for TrainResult
        self.protocol = EvalProtocol(crop="none")
        self.writer = None
        if resume:
            self.load_state(resume_path(resume, self.out_dir))
        self.net = self.model
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=device_ids)
        if self.dist.is_main:
            self.open_run_dir(truncate_after_epoch=self.epoch)

    # one step, one epoch, the whole run

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        depth_m, _features = self.net(batch["image"])  # (N, 1, H, W) metres
        image = batch["image"].permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W) in [0, 1]
        return self.loss_fn(depth_m.float(), batch["depth"], batch["valid"], image=image)

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with self.autocast():
            loss = self.compute_loss(batch)
        loss_value = self.check_finite(loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.clip_gradients()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.global_step += 1
        return loss_value

    def train_epoch(self, epoch: int) -> float:
        self.net.train()
        self.loaders.train_sampler.set_epoch(epoch)
        self.loaders.train_frames.set_epoch(epoch)
        losses = []
        for batch in self.progress(epoch):
            losses.append(self.train_step(batch))
            self.step_losses.append(losses[-1])
            if self.writer is not None and self.global_step % self.cfg.run.log_every == 0:
                self.writer.add_scalar("train/loss", losses[-1], self.global_step)
                self.writer.add_scalar("train/lr", self.current_lr(), self.global_step)
        return float(np.mean(losses))

    def fit(self) -> TrainResult:
        history = []
        for epoch in range(self.epoch, self.cfg.optim.epochs):
            started = time.monotonic()
            train_loss = self.train_epoch(epoch)
            self.sync_buffers()
            self.check_weights_finite()  # a last step can turn weights to NaN with a finite loss
            metrics, samples = self.validate() if self.should_validate(epoch) else (None, [])
            self.epoch = epoch + 1
            record = self.end_epoch(train_loss, metrics, samples, time.monotonic() - started)
            history.append(record)
        last = self.out_dir / LAST if self.dist.is_main else None
        best = self.out_dir / BEST if self.dist.is_main and (self.out_dir / BEST).exists() else None
        return TrainResult(self.best_metric, last, history, self.step_losses, best)

    def close(self, leave_together: bool = True) -> None:
        """Flush TensorBoard and leave the process group (when we joined it).

        Ranks leave together (a barrier first): a gloo rank whose peer destroyed the group
        first sometimes aborted at exit ("terminate called without an active exception"; 3 of
        about 20 two-rank torchrun runs here, 0 of 30 with the barrier). The DDP wrapper is
        dropped too, so the group and its worker threads are gone before the interpreter exits
        (see ``distributed._import_dynamo_first``). Pass False when unwinding an error, where
        the other ranks may be stuck in a collective with this one.
        """
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.dist.owns_group and dist.is_initialized():
            if leave_together:
                dist.barrier()
            dist.destroy_process_group()
            self.net = self.model  # DDP holds the group: dropped, the group and its workers go now

    # step details

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def check_finite(self, loss: torch.Tensor) -> float:
        """The loss averaged over ranks; raise TrainingDivergedError (on every rank) if not finite."""
        value = loss.detach().float().clone()
        if self.dist.enabled:
            dist.all_reduce(value)
            value /= self.dist.world_size
        value = float(value)
        if not math.isfinite(value):
            self.diverged(f"the loss became {value}")
        return value

    def clip_gradients(self) -> None:
        if not self.cfg.optim.grad_clip_norm:
            return
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip_norm)
        # With fp16 a GradScaler skips inf steps and lowers its scale; without one it is fatal.
        if not self.scaler.is_enabled() and not torch.isfinite(norm):
            self.diverged(f"the gradient norm became {float(norm)}")

    def sync_buffers(self) -> None:
        """Give every rank rank 0's batch-norm statistics, as DDP does before each forward.

        Each rank's last forward updates its own running stats; without this the replicas
        (and a resume on a different rank) would disagree at the epoch boundary.
        """
        if self.dist.enabled:
            for buffer in self.model.buffers():
                dist.broadcast(buffer, src=0)

    def check_weights_finite(self) -> None:
        bad = [name for name, p in self.model.state_dict().items()
               if p.is_floating_point() and not bool(torch.isfinite(p).all())]
        if bad:
            self.diverged(f"the weights became non-finite ({', '.join(bad[:3])}...)")

    def diverged(self, what: str) -> None:
        raise TrainingDivergedError(
            f"{what} at step {self.global_step} (epoch {self.epoch + 1}) with lr "
            f"{self.current_lr():.3g}; nothing of this epoch was saved and "
            f"{self.out_dir / LAST} (if any) still holds the last good epoch. Lower optim.lr or "
            "raise optim.warmup_steps, check the data for NaN/inf depth or images, then resume "
            "with --resume or retrain")

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def progress(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        batches = islice(self.loaders.train, self.steps_per_epoch)
        show = self.dist.is_main and self.cfg.run.progress and sys.stderr.isatty()
        if not show:
            return batches
        from tqdm import tqdm

        return tqdm(batches, total=self.steps_per_epoch, leave=False, dynamic_ncols=True,
                    desc=f"epoch {epoch + 1}/{self.cfg.optim.epochs}")

    # validation at the network size (the full 640x480 protocol is `depth-unet evaluate`)

    def should_validate(self, epoch: int) -> bool:
        last = epoch + 1 == self.cfg.optim.epochs
        due = (epoch + 1) % self.cfg.run.val_every_epochs == 0
        return self.loaders.val is not None and (due or last)

    @torch.no_grad()
    def validate(self) -> tuple[dict[str, float] | None, list[tuple]]:
        """Rank 0: mean per-image metrics over the validation frames, and a few samples."""
        if not self.dist.is_main:
            return None, []
        self.model.eval()
        averager, samples = MetricAverager(), []
        lo, hi = self.protocol.min_depth_m, self.protocol.max_depth_m
        for batch in self.loaders.val:
            pred_m = self.model(batch["image"].to(self.device))[0].float().cpu().numpy()  # (N,1,H,W)
            for i in range(pred_m.shape[0]):
                gt_m = batch["depth"][i, 0].numpy()  # (H, W)
                valid = batch["valid"][i, 0].numpy() & self.protocol.valid_mask(gt_m)
                if not valid.any():
                    continue
                pred = np.clip(pred_m[i, 0], lo, hi)
                averager.add(depth_metrics(pred[valid], gt_m[valid]), str(int(batch["index"][i])))
                if len(samples) < self.cfg.run.num_sample_images:
                    samples.append((batch["image"][i].numpy(), pred, gt_m))
        self.model.train()
        if averager.count == 0:
            log.warning("no validation frame had valid depth in (%g, %g) m; skipping metrics", lo, hi)
            return None, []
        return averager.mean(), samples

    # run files

    def end_epoch(self, train_loss: float, metrics: dict[str, float] | None,
                  samples: list[tuple], seconds: float) -> dict:
        """Update best, write last.pt (and best.pt), append metrics.jsonl, log; all ranks sync."""
        name = self.cfg.run.best_metric
        improved = metrics is not None and self.is_improvement(metrics[name])
        if improved:
            self.best_metric = metrics[name]
        record = {"epoch": self.epoch, "global_step": self.global_step, "train_loss": train_loss,
                  "lr": self.current_lr(), "seconds": round(seconds, 3), "val": metrics,
                  "best": improved}
        if self.dist.is_main:
            state = self.state_dict()
            save_checkpoint(self.out_dir / LAST, state)
            if improved:
                save_checkpoint(self.out_dir / BEST, state)
            with open(self.out_dir / METRICS_FILE, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            self.log_epoch(record, samples)
        if self.dist.enabled:
            dist.barrier()
        return record

    def is_improvement(self, value: float) -> bool:
        if self.best_metric is None:
            return True
        higher = is_higher_better(self.cfg.run.best_metric)
        return value > self.best_metric if higher else value < self.best_metric

    def log_epoch(self, record: dict, samples: list[tuple]) -> None:
        val = record["val"]
        summary = f"{self.cfg.run.best_metric} {val[self.cfg.run.best_metric]:.4f}" if val else "no val"
        log.info("epoch %d/%d step %d: train loss %.4f, %s%s", record["epoch"],
                 self.cfg.optim.epochs, record["global_step"], record["train_loss"], summary,
                 " (best)" if record["best"] else "")
        if self.writer is None:
            return
        self.writer.add_scalar("train/epoch_loss", record["train_loss"], self.global_step)
        self.writer.add_scalar("train/lr", record["lr"], self.global_step)
        for key, value in (val or {}).items():
            self.writer.add_scalar(f"val/{key}", value, self.global_step)
        for k, (image, pred_m, gt_m) in enumerate(samples):
            self.writer.add_image(f"val/sample_{k}", sample_image(image, pred_m, gt_m),
                                  self.global_step, dataformats="HWC")
        self.writer.flush()

    def open_run_dir(self, truncate_after_epoch: int) -> None:
        """Create out_dir, write config.yaml, drop metrics lines a resume will redo, open TB."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if truncate_after_epoch == 0 and (self.out_dir / LAST).exists():
            log.warning("%s already holds a run; starting afresh overwrites it (use --resume to "
                        "continue it, or --out for a new folder)", self.out_dir)
        save_config_yaml(self.cfg, self.out_dir / "config.yaml")
        truncate_metrics(self.out_dir / METRICS_FILE, truncate_after_epoch)
        if self.cfg.run.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: a resumed run drops the events the interrupted run logged past it
            self.writer = SummaryWriter(log_dir=str(self.out_dir / "tb"),
                                        purge_step=self.global_step or None)

    # checkpoint state

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "best_metric_name": self.cfg.run.best_metric,
            "config": config_to_dict(self.cfg),
            "model_config": self.cfg.model.to_dict(),
            "rng": capture_rng_state(),
        }

    def load_state(self, path: Path) -> None:
        """Restore everything an uninterrupted run would have at the end of the saved epoch."""
        state = load_checkpoint(path, map_location=self.device)
        if state["model_config"] != self.cfg.model.to_dict():
            diff = sorted(k for k, v in self.cfg.model.to_dict().items()
                          if state["model_config"].get(k) != v)
            raise ConfigError(f"checkpoint {path} was trained with a different model config "
                              f"(differs in: {', '.join(diff)}); resume with the run's own config.yaml")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        if state.get("best_metric_name") == self.cfg.run.best_metric:
            self.best_metric = state["best_metric"]
        restore_rng_state(state["rng"])  # last: nothing after this may draw random numbers
        if self.dist.is_main:
            log.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.global_step)


def resume_path(resume: bool | str | Path, out_dir: Path) -> Path:
    """``True`` means the run's own last.pt; a path means that checkpoint."""
    path = out_dir / LAST if resume is True else Path(resume)
    if not path.is_file():
        raise ModelLoadError(f"cannot resume: checkpoint {path} does not exist; pass --resume PATH "
                             "to an existing last.pt or best.pt, or drop --resume to start fresh")
    return path


def truncate_metrics(path: Path, keep_epochs: int) -> None:
    """Keep only the metrics.jsonl records of epochs <= keep_epochs (a resume redoes the rest)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("epoch", 0) <= keep_epochs]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))


def sample_image(image: np.ndarray, pred_m: np.ndarray, gt_m: np.ndarray) -> np.ndarray:
    """input | prediction | ground truth (| error), uint8 RGB, for TensorBoard."""
    try:
        from depth_unet_ros.visualize import comparison_image
    except ImportError:  # visualize absent: grey maps on one shared scale
        hi = max(float(gt_m.max()), 1e-6)
        grey = [np.repeat((np.clip(d / hi, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
                for d in (pred_m, gt_m)]
        return np.concatenate([image, *grey], axis=1)
    return comparison_image(image, pred_m, gt_m)


def train(cfg: TrainConfig, resume: bool | str | Path = False) -> TrainResult:
    """Train as ``cfg`` says (resuming from last.pt or a given checkpoint); returns the result."""
    trainer = Trainer(cfg, resume)
    try:
        result = trainer.fit()
    except BaseException:
        trainer.close(leave_together=False)
        raise
    trainer.close()
    return result
