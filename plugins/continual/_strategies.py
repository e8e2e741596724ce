"""The continual strategies' implementation (registered in :mod:`bench_plugins.continual.strategies`).

:class:`Sequential` is sequential fine-tuning and the common machinery (one backbone, a head per
task or one growing head, the training loop); each method overrides its hooks. EWC, SI and MAS
share the importance penalties of :mod:`bench.continual.penalties`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch import nn

from bench.accel import maybe_compile, run_info, to_device, use_channels_last
from bench.continual.penalties import Anchor, Importance, fisher, mean_one, output_sensitivity
from bench.continual.spec import StreamInfo
from bench.encoders import count_parameters, encode, preprocess
from bench.errors import UserError
from bench.loop import cosine_lambda, run_steps, set_batchnorm_eval
from bench.strategies import FitContext
from bench.tasks import Split
from bench.training import augment, num_steps


class _Logits(nn.Module):
    """Backbone features -> the logits task ``t`` is scored on (a callable of the learner)."""

    def __init__(self, learner: Sequential, t: int, upto: int, features: bool = False) -> None:
        super().__init__()
        self.learner, self.t, self.upto, self.features = learner, t, upto, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x if self.features else self.learner.forward_backbone(x, self.t)
        return self.learner.logits(feats, self.t, self.upto)


class _Backbone(nn.Module):
    """Task ``t``'s backbone forward (the learner's hook), as a module the loop can compile."""

    def __init__(self, learner: Sequential, t: int) -> None:
        super().__init__()
        self.learner, self.t = learner, t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.learner.forward_backbone(x, self.t)


class Sequential:
    """Sequential fine-tuning: every task trains the whole network in turn (the lower bound)."""

    #: the backbone's AdamW weight decay (methods with a penalty towards earlier weights use 0)
    backbone_decay = True

    def begin(self, stream: StreamInfo, ctx: FitContext) -> None:
        self.stream, self.config, self.seed, self.device = stream, dict(ctx.config), ctx.seed, ctx.device
        self.encoder = ctx.load_encoder(pretrained=True)
        self.backbone = self.encoder.module
        self.class_il = stream.scenario == "class"
        self.offsets = stream.offsets if self.class_il else (0,) * len(stream.tasks)
        self.ends = [o + t.num_classes for o, t in zip(self.offsets, stream.tasks)]
        torch.manual_seed(ctx.seed)
        sizes = [stream.num_classes] if self.class_il else [t.num_classes for t in stream.tasks]
        self.heads = nn.ModuleList(nn.Linear(self.encoder.feature_dim, n) for n in sizes)
        self.net = nn.ModuleDict({"backbone": self.backbone, "heads": self.heads}).to(self.device).eval()
        self.learned = 0
        self.setup()

    # -- hooks ---------------------------------------------------------------------------------------
    def setup(self) -> None: ...

    def training_set(self, t: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x, y, torch.full_like(y, t)

    def extra_loss(self, x: torch.Tensor, feats: torch.Tensor, t: int, gen: torch.Generator) -> torch.Tensor | float:
        return 0.0

    def after_step(self) -> None: ...

    def after_task(self, t: int, x: torch.Tensor, y: torch.Tensor) -> None: ...

    def forward_backbone(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return self.backbone(x)

    def backbone_parameters(self, t: int) -> list[nn.Parameter]:
        return list(self.backbone.parameters())

    # -- label spaces --------------------------------------------------------------------------------
    def logits(self, feats: torch.Tensor, t: int, upto: int) -> torch.Tensor:
        """Task ``t``'s head; class-incremental: the one head over the classes of tasks ``0..upto``."""
        if not self.class_il:
            return self.heads[t](feats)
        return self.heads[0](feats)[:, : self.ends[upto]]

    def task_loss(self, feats: torch.Tensor, y: torch.Tensor, tids: torch.Tensor, current: int) -> torch.Tensor:
        """Cross-entropy of items of any learned task, each on its own head (weighted by count)."""
        total = feats.new_zeros(())
        for s in tids.unique().tolist():
            mask = tids == s
            target = y[mask] + self.offsets[s]
            total = total + F.cross_entropy(self.logits(feats[mask], s, current), target) * mask.float().mean()
        return total

    # -- the contract ----------------------------------------------------------------------------------
    def learn(self, t: int, ctx: FitContext) -> dict[str, Any]:
        labelled = ctx.labelled
        x = preprocess(labelled.images(range(len(labelled))), self.encoder)
        y = torch.as_tensor(np.asarray(labelled.labels), dtype=torch.long)
        data = self.training_set(t, x, y)
        n, cfg = len(data[1]), self.config
        steps, batch = num_steps(n, cfg), min(int(cfg["batch_size"]), n)
        lr = float(cfg["lr"])
        groups = [{"params": [p for p in self.backbone_parameters(t) if p.requires_grad], "lr": lr},
                  {"params": list(self.heads.parameters()), "lr": lr * float(cfg["head_lr_mult"])}]
        if not self.backbone_decay:
            groups[0]["weight_decay"] = 0.0
        groups = [g for g in groups if g["params"]]
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=float(cfg["weight_decay"]))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(steps, round(steps * float(cfg["warmup_frac"]))))
        gen = torch.Generator().manual_seed(self.seed * 1009 + t)
        order, cursor = torch.randperm(n, generator=gen), 0
        channels_last = use_channels_last(self.net, self.device)  # the loop's GPU path: channels_last, compile
        hook = _Backbone(self, t)
        backbone = maybe_compile(hook)

        def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal order, cursor
            self.net.train()
            set_batchnorm_eval(self.net)
            if cursor + batch > n:
                order, cursor = torch.randperm(n, generator=gen), 0
            idx = order[cursor: cursor + batch]
            cursor += batch
            return idx, to_device(augment(data[0][idx], cfg.get("augment", "none"), gen, self.encoder), self.device,
                                  channels_last)

        def loss_of(drawn: tuple[torch.Tensor, torch.Tensor], step: int, part: slice) -> torch.Tensor:
            idx, xb = drawn
            feats = backbone(xb)
            loss = self.task_loss(feats, data[1][idx].to(self.device), data[2][idx].to(self.device), t)
            return loss + self.extra_loss(xb, feats, t, gen)

        result = run_steps([opt], steps, draw, loss_of, device=self.device, scheduler=sched,
                           after_step=lambda step: self.after_step(), progress=ctx.progress, where=f" on task {t}")
        self.net.eval()
        self.after_task(t, x, y)
        self.learned = t + 1
        trainable, total = count_parameters(self.net)
        return {"steps": steps, "batch_size": batch, "final_loss": round(result.final_loss, 5),
                "trainable_params": trainable, "total_params": total} | run_info(backbone is not hook, batch, batch)

    @torch.no_grad()
    def predict(self, t: int, split: Split) -> np.ndarray:
        self.net.eval()
        module = _Logits(self, t, max(self.learned - 1, t))
        logits = encode(self.encoder, split.images, len(split), device=self.device, module=module)
        return np.asarray(logits).argmax(axis=1)  # class-incremental: global class indices


class _Anchored(Sequential):
    """A quadratic penalty towards the weights after the last task, weighted by an importance
    (normalised to mean 1, so ``strength`` is on one scale for EWC, SI and MAS)."""

    backbone_decay = False
    strength_key = ""

    def setup(self) -> None:
        self.importance: Importance | None = None
        self.penalty: Anchor | None = None

    def extra_loss(self, x: torch.Tensor, feats: torch.Tensor, t: int, gen: torch.Generator) -> torch.Tensor | float:
        return 0.0 if self.penalty is None else self.penalty()

    def task_importance(self, t: int, x: torch.Tensor, y: torch.Tensor) -> Importance:
        raise NotImplementedError

    def decay(self) -> float:
        return 1.0

    def after_task(self, t: int, x: torch.Tensor, y: torch.Tensor) -> None:
        new = mean_one(self.task_importance(t, x, y))
        old = self.importance
        self.importance = new if old is None else {k: self.decay() * old[k] + new[k] for k in new}
        strength = float(self.config[self.strength_key])
        if strength < 0:
            raise UserError(f"{self.strength_key} must be >= 0, got {strength}")
        self.penalty = Anchor(self.backbone, strength, self.importance)

    def _sample(self, t: int, x: torch.Tensor, y: torch.Tensor, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        n = min(len(x), int(self.config[key]))
        pos = torch.as_tensor(np.random.default_rng(self.seed + t).permutation(len(x))[:n])
        return x[pos].to(self.device), y[pos] + self.offsets[t]


class OnlineEWC(_Anchored):
    """Online EWC (Schwarz et al. 2018): F <- gamma F + F_t, anchored at the last task's weights."""

    strength_key = "ewc_lambda"

    def decay(self) -> float:
        return float(self.config["ewc_gamma"])

    def task_importance(self, t: int, x: torch.Tensor, y: torch.Tensor) -> Importance:
        images, labels = self._sample(t, x, y, "ewc_fisher_items")
        return fisher(self.backbone, _Logits(self, t, t, features=True), images, labels)


class MAS(_Anchored):
    """Memory Aware Synapses (Aljundi et al. 2018): importance = mean |d ||logits(x)||^2 / dw|."""

    strength_key = "mas_lambda"

    def task_importance(self, t: int, x: torch.Tensor, y: torch.Tensor) -> Importance:
        images, _ = self._sample(t, x, y, "mas_items")
        return output_sensitivity(self.backbone, _Logits(self, t, t, features=True), images)


class SI(_Anchored):
    """Synaptic Intelligence (Zenke et al. 2017): the path integral of -grad * dw over a task,
    divided by (total change)^2 + xi; negative contributions are clipped at zero."""

    strength_key = "si_c"

    def setup(self) -> None:
        super().setup()
        self.named = [(n, p) for n, p in self.backbone.named_parameters() if p.requires_grad]
        self._start_task()

    def _start_task(self) -> None:
        self.start = {n: p.detach().clone() for n, p in self.named}
        self.prev = {n: p.detach().clone() for n, p in self.named}
        self.omega = {n: torch.zeros_like(p) for n, p in self.named}

    def after_step(self) -> None:
        for n, p in self.named:
            if p.grad is not None:  # the step's gradient (read after the step: AdamW keeps .grad)
                self.omega[n] -= p.grad.detach() * (p.detach() - self.prev[n])
            self.prev[n] = p.detach().clone()

    def task_importance(self, t: int, x: torch.Tensor, y: torch.Tensor) -> Importance:
        xi = float(self.config["si_xi"])
        out = {n: (self.omega[n] / ((p.detach() - self.start[n]) ** 2 + xi)).clamp(min=0) for n, p in self.named}
        self._start_task()
        return out


class LwF(Sequential):
    """Learning without Forgetting (Li & Hoiem 2016): on each new task, distil the previous
    model's outputs for the earlier tasks on the new task's images (temperature ``lwf_temperature``)."""

    def setup(self) -> None:
        self.old: nn.ModuleDict | None = None

    def training_set(self, t: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.old = copy.deepcopy(self.net).eval() if t > 0 else None
        return super().training_set(t, x, y)

    def extra_loss(self, x: torch.Tensor, feats: torch.Tensor, t: int, gen: torch.Generator) -> torch.Tensor | float:
        if self.old is None:
            return 0.0
        temp = float(self.config["lwf_temperature"])
        with torch.no_grad():
            old_feats = self.old["backbone"](x)
        olds = [t - 1] if self.class_il else list(range(t))
        total = feats.new_zeros(())
        for s in olds:
            with torch.no_grad():
                target = F.softmax(self._old_logits(old_feats, s) / temp, dim=1)
            new = self.logits(feats, s, s)
            total = total + F.kl_div(F.log_softmax(new / temp, dim=1), target, reduction="batchmean") * temp ** 2
        return float(self.config["lwf_alpha"]) * total / len(olds)

    def _old_logits(self, feats: torch.Tensor, s: int) -> torch.Tensor:
        assert self.old is not None
        heads: Any = self.old["heads"]
        return heads[s](feats) if not self.class_il else heads[0](feats)[:, : self.ends[s]]


class Rehearsal(Sequential):
    """Experience replay from a fixed-size buffer filled by reservoir sampling over the stream's
    labelled items; each step adds the loss of a replayed batch (each item on its own head)."""

    def setup(self) -> None:
        self.memory: list[tuple[torch.Tensor, int, int]] = []
        self.seen = 0
        self.rng = np.random.default_rng(self.seed)

    def extra_loss(self, x: torch.Tensor, feats: torch.Tensor, t: int, gen: torch.Generator) -> torch.Tensor | float:
        if not self.memory:
            return 0.0
        k = min(len(self.memory), int(self.config["batch_size"]))
        pick = torch.randperm(len(self.memory), generator=gen)[:k].tolist()
        xm = augment(torch.stack([self.memory[i][0] for i in pick]), self.config.get("augment", "none"), gen,
                     self.encoder).to(self.device)
        ym = torch.tensor([self.memory[i][1] for i in pick], device=self.device)
        tm = torch.tensor([self.memory[i][2] for i in pick], device=self.device)
        return self.task_loss(self.forward_backbone(xm, t), ym, tm, t)

    def after_task(self, t: int, x: torch.Tensor, y: torch.Tensor) -> None:
        size = int(self.config["memory_size"])
        for i in range(len(x)):
            self.seen += 1
            item = (x[i], int(y[i]), t)
            if len(self.memory) < size:
                self.memory.append(item)
            else:
                slot = int(self.rng.integers(0, self.seen))
                if slot < size:
                    self.memory[slot] = item


class Joint(Sequential):
    """The upper bound: at each task, train from the pre-trained weights on every budget so far."""

    def setup(self) -> None:
        self.initial = copy.deepcopy(self.net.state_dict())
        self.seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def training_set(self, t: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.net.load_state_dict(self.initial)
        self.seen.append((x, y, torch.full_like(y, t)))
        return tuple(torch.cat([s[k] for s in self.seen]) for k in range(3))


class LoRAPerTask(Sequential):
    """One LoRA module per task (peft adapters on the encoder's ``lora_targets``), the backbone
    frozen: a task's adapter and head are never trained again, so nothing is forgotten. Needs the
    task's identity at test time (task-incremental only)."""

    def setup(self) -> None:
        cfg = self.config
        if not self.encoder.lora_targets:
            raise UserError(f"lora-per-task: encoder {self.encoder.name!r} declares no lora_targets; use finetune")
        self.lora_config = LoraConfig(r=int(cfg["lora_rank"]), lora_alpha=int(cfg["lora_alpha"]),
                                      lora_dropout=float(cfg.get("lora_dropout", 0.0)),
                                      target_modules=list(self.encoder.lora_targets), bias="none")
        torch.manual_seed(self.seed)  # LoRA's A matrices are random; B starts at zero
        self.peft = get_peft_model(self.backbone, self.lora_config).to(self.device)
        self.adapters: list[str] = []

    def _use(self, t: int) -> bool:
        name = "default" if t == 0 else f"task{t}"
        if name not in self.peft.peft_config:
            return False
        self.peft.set_adapter(name)
        for n, p in self.peft.named_parameters():
            p.requires_grad = f".{name}." in n
        return True

    def training_set(self, t: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if t > 0:
            torch.manual_seed(self.seed + t)
            self.peft.add_adapter(f"task{t}", self.lora_config)
            self.peft.to(self.device)
        self._use(t)
        return super().training_set(t, x, y)

    def backbone_parameters(self, t: int) -> list[nn.Parameter]:
        return [p for p in self.peft.parameters() if p.requires_grad]

    def forward_backbone(self, x: torch.Tensor, t: int) -> torch.Tensor:
        if self._use(t):
            return self.peft(x)
        with self.peft.disable_adapter():  # a task not learned yet: the pre-trained backbone
            return self.peft(x)


def make(kind: str) -> Sequential:
    classes: dict[str, type[Sequential]] = {"finetune": Sequential, "ewc": OnlineEWC, "si": SI, "mas": MAS,
                                            "lwf": LwF, "rehearsal": Rehearsal, "joint": Joint,
                                            "lora-per-task": LoRAPerTask}
    return classes[kind]()


def finetune() -> Sequential:
    return make("finetune")


def ewc() -> Sequential:
    return make("ewc")


def si() -> Sequential:
    return make("si")


def mas() -> Sequential:
    return make("mas")


def lwf() -> Sequential:
    return make("lwf")


def rehearsal() -> Sequential:
    return make("rehearsal")


def joint() -> Sequential:
    return make("joint")


def lora_per_task() -> Sequential:
    return make("lora-per-task")
