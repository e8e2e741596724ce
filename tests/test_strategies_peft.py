"""Parameter-efficient strategies (bitfit, lora, adapter, vpt) and layer-wise lr decay, on tiny
random-init timm models: what must stay frozen is bit-identical, what must train changed, the
zero-initialised parts start from the base model, and trainable counts match a hand count."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import timm  # noqa: E402
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

from bench.encoders import Encoder, count_parameters, encode, preprocess  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.strategies import FitContext  # noqa: E402
from bench.tasks import ArraySplit, TaskData  # noqa: E402
from bench.training import Classifier, layer_decay_groups  # noqa: E402

NUM_CLASSES = 3
FAST = {"epochs": 1, "min_steps": 3, "max_steps": 3, "batch_size": 8, "augment": "none"}


def tiny_vit() -> Encoder:
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=0)
    return Encoder(name="tiny-vit", module=vit, feature_dim=32, input_size=32, is_vit=True, patch_size=8,
                   layer_groups=[["cls_token", "pos_embed", "patch_embed"], ["blocks.0"], ["blocks.1"], ["norm"]],
                   lora_targets=["attn.qkv", "attn.proj"], adapter_targets=["blocks.0", "blocks.1"])


def tiny_cnn() -> Encoder:
    torch.manual_seed(0)
    net = timm.create_model("test_efficientnet", num_classes=0)
    blocks = [f"blocks.{i}" for i in range(len(net.blocks))]
    return Encoder(name="tiny-cnn", module=net, feature_dim=net.num_features, input_size=32,
                   layer_groups=[["conv_stem", "bn1"], *[[b] for b in blocks], ["conv_head", "bn2"]],
                   lora_targets=["conv_pwl", "conv_head"], adapter_targets=blocks)


def make_ctx(base: Encoder, spec_defaults: dict, n: int = 12, **overrides) -> FitContext:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(n) % NUM_CLASSES
    train = ArraySplit([f"t/{i}" for i in range(n)], images, labels)
    task = TaskData(name="toy", classes=[str(c) for c in range(NUM_CLASSES)], train=train, test=train)
    frozen = copy.deepcopy(base)
    config = {**spec_defaults, **FAST, **overrides}
    return FitContext(task_name=task.name, classes=list(task.classes), extra=task.extra,
                      labelled=train, unlabelled_target=None, config=config, seed=0, device="cpu",
                      load_encoder=lambda pretrained=True: copy.deepcopy(base),
                      features=lambda split: encode(frozen, split.images, len(split)))


def spec(module, name):
    return next(s for s in module.bench_register_strategies() if s.name == name)


def batch(encoder: Encoder) -> torch.Tensor:
    rng = np.random.default_rng(1)
    return preprocess(list(rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)), encoder)


def snapshot(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def head_count(encoder: Encoder) -> int:
    return encoder.feature_dim * NUM_CLASSES + NUM_CLASSES


# ---- bitfit ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [tiny_cnn, tiny_vit])
def test_bitfit_trains_only_biases_and_head(make):
    from bench_plugins.strategies import bitfit

    base = make()
    before = snapshot(base.module)
    fitted = spec(bitfit, "bitfit").load().fit(make_ctx(base, dict(spec(bitfit, "bitfit").defaults)))
    after = fitted.encoder.module.state_dict()
    biases = {k for k, _ in base.module.named_parameters() if k.endswith("bias")}
    assert biases
    for k, v in before.items():
        if k in biases:
            assert not torch.equal(v, after[k]), f"bias {k} did not train"
        else:  # weights and BatchNorm running statistics
            assert torch.equal(v, after[k]), f"{k} changed but must stay frozen"
    hand = sum(p.numel() for k, p in base.module.named_parameters() if k in biases) + head_count(base)
    assert fitted.trainable_params == hand
    assert fitted.total_params == count_parameters(base.module)[1] + head_count(base)


# ---- lora -----------------------------------------------------------------------------------

def lora_hand_count(encoder: Encoder, rank: int) -> int:
    """A = conv(in -> r, same kernel), B = 1x1 conv(r -> out), no biases (or Linear equivalents)."""
    total = 0
    for name, m in encoder.module.named_modules():
        if any(name == t or name.endswith("." + t) for t in encoder.lora_targets):
            if isinstance(m, torch.nn.Conv2d):
                total += rank * m.in_channels * m.kernel_size[0] * m.kernel_size[1] + m.out_channels * rank
            else:
                total += rank * m.in_features + m.out_features * rank
    return total


@pytest.mark.parametrize("make", [tiny_cnn, tiny_vit])
def test_lora_before_first_step_gives_base_outputs(make):
    from bench_plugins.strategies.lora import apply_lora, lora_layers

    base = make()
    x = batch(base)
    base.module.eval()
    with torch.no_grad():
        expected = base.module(x)
    enc = copy.deepcopy(base)
    wrapped = apply_lora(enc, rank=4, alpha=8, dropout=0.0).eval()
    assert len(lora_layers(wrapped)) > 0
    with torch.no_grad():
        assert torch.equal(wrapped(x), expected)


@pytest.mark.parametrize("make", [tiny_cnn, tiny_vit])
def test_lora_trains_only_adapters_and_merged_equals_unmerged(make):
    from bench_plugins.strategies import lora

    base = make()
    before = snapshot(base.module)
    defaults = dict(spec(lora, "lora").defaults)
    fitted = spec(lora, "lora").load().fit(make_ctx(base, defaults, lora_rank=4, lr=1e-2))
    peft_model = fitted.encoder.module
    state = peft_model.get_base_model().state_dict()
    lora_keys = [k for k in state if "lora_" in k]
    assert lora_keys and any("lora_B" in k and state[k].abs().sum() > 0 for k in lora_keys)
    for k, v in before.items():  # peft renames a wrapped layer's weight to <layer>.base_layer.weight
        key = k if k in state else k.rsplit(".", 1)[0] + ".base_layer." + k.rsplit(".", 1)[1]
        assert torch.equal(v, state[key]), f"{k} changed but must stay frozen"
    assert fitted.trainable_params == lora_hand_count(base, 4) + head_count(base)
    x = batch(base)
    peft_model.eval()
    with torch.no_grad():
        unmerged = peft_model(x)
        peft_model.merge_adapter()
        merged = peft_model(x)
        peft_model.unmerge_adapter()
    assert not torch.allclose(unmerged, base.module.eval()(x), atol=1e-4)  # LoRA changed the function
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-4)


def test_lora_without_targets_is_a_user_error():
    from bench_plugins.strategies.lora import apply_lora

    enc = tiny_cnn()
    enc.lora_targets = []
    with pytest.raises(UserError, match="lora_targets"):
        apply_lora(enc, 4, 8, 0.0)


# ---- adapters -------------------------------------------------------------------------------

@pytest.mark.parametrize("make,style", [(tiny_cnn, "houlsby"), (tiny_vit, "houlsby"), (tiny_vit, "adaptformer")])
def test_adapters_start_from_base_outputs(make, style):
    from bench_plugins.strategies.adapter import add_adapters

    base = make()
    x = batch(base)
    with torch.no_grad():
        expected = base.module.eval()(x)
    enc = copy.deepcopy(base)
    n = add_adapters(enc, style, reduction=4)
    expected_sites = {"houlsby": 4, "adaptformer": 2}[style] if base.is_vit else len(base.adapter_targets)
    assert n == expected_sites
    with torch.no_grad():
        assert torch.equal(enc.module.eval()(x), expected)


def adapter_hand_count(widths: list[int], reduction: int) -> int:
    return sum(2 * c * max(1, c // reduction) + max(1, c // reduction) + c for c in widths)


@pytest.mark.parametrize("make,style", [(tiny_cnn, "houlsby"), (tiny_vit, "houlsby"), (tiny_vit, "adaptformer")])
def test_adapter_training_keeps_backbone_frozen(make, style):
    from bench_plugins.strategies import adapter

    base = make()
    before = snapshot(base.module)
    defaults = dict(spec(adapter, "adapter").defaults)
    fitted = spec(adapter, "adapter").load().fit(make_ctx(base, defaults, adapter_style=style, adapter_reduction=4))
    after = fitted.encoder.module.state_dict()
    # Wrapped sub-modules live under "<name>.inner."; adapters under "<name>.adapter.".
    renamed = {}
    for k in after:
        if ".adapter." not in k:
            renamed[k.replace(".inner.", ".")] = after[k]
    assert set(renamed) == set(before)
    for k, v in before.items():
        assert torch.equal(v, renamed[k]), f"{k} changed but must stay frozen"
    ups = [v for k, v in after.items() if ".adapter.up.weight" in k]
    assert ups and all(u.abs().sum() > 0 for u in ups)
    if base.is_vit:
        widths = [32] * (4 if style == "houlsby" else 2)
    else:  # each stage's output channels
        widths = [blk[-1].conv_pwl.out_channels if hasattr(blk[-1], "conv_pwl") else blk[-1].conv.out_channels
                  for blk in base.module.blocks]
    assert fitted.trainable_params == adapter_hand_count(widths, 4) + head_count(base)


def test_unknown_adapter_style_is_a_user_error():
    from bench_plugins.strategies.adapter import add_adapters

    with pytest.raises(UserError, match="adapter_style 'pfeiffer'"):
        add_adapters(tiny_vit(), "pfeiffer")


# ---- vpt ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["deep", "shallow"])
@pytest.mark.parametrize("pool", ["token", "avg"])
def test_gated_vpt_with_zero_gates_gives_base_outputs(mode, pool):
    from bench_plugins.strategies.vpt import add_prompts

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=0,
                            global_pool=pool)
    base = Encoder(name="v", module=vit, feature_dim=32, input_size=32, is_vit=True, patch_size=8)
    x = batch(base)
    with torch.no_grad():
        expected = vit.eval()(x)
        prompted = add_prompts(copy.deepcopy(base), num_prompts=4, mode=mode, gated=True).eval()
        prompted.prompts.normal_()  # even non-zero prompts: the closed gates remove them
        torch.testing.assert_close(prompted(x), expected, atol=1e-5, rtol=1e-5)
        ungated = add_prompts(copy.deepcopy(base), num_prompts=4, mode=mode, gated=False).eval()
        assert not torch.allclose(ungated(x), expected, atol=1e-3)  # plain VPT does change outputs


@pytest.mark.parametrize("mode", ["deep", "shallow"])
def test_vpt_trains_prompts_gates_and_head_only(mode):
    from bench_plugins.strategies import vpt
    from bench_plugins.strategies.vpt import add_prompts

    base = tiny_vit()
    before = snapshot(base.module)
    defaults = dict(spec(vpt, "vpt").defaults)
    fitted = spec(vpt, "vpt").load().fit(make_ctx(base, defaults, vpt_mode=mode, vpt_tokens=4, lr=1e-2))
    prompted = fitted.encoder.module
    after = {k.replace(".attn.attn.", ".attn."): v for k, v in prompted.vit.state_dict().items()
             if not k.endswith(".attn.gate")}
    for k, v in before.items():
        assert torch.equal(v, after[k]), f"{k} changed but must stay frozen"
    gates = [blk.attn.gate for blk in prompted.vit.blocks]
    assert all(g.abs().sum() > 0 for g in gates)
    torch.manual_seed(0)  # the strategy seeds the prompts' init with ctx.seed
    initial = add_prompts(copy.deepcopy(base), num_prompts=4, mode=mode, gated=True).prompts
    assert initial.shape == prompted.prompts.shape and not torch.equal(initial, prompted.prompts)
    layers = 2 if mode == "deep" else 1
    assert fitted.trainable_params == layers * 4 * 32 + 2 * 2 + head_count(base)


def test_vpt_requires_a_vit_and_rejects_cnns_clearly():
    from bench_plugins.strategies import vpt
    from bench_plugins.strategies.vpt import add_prompts

    assert "vit" in spec(vpt, "vpt").requires
    with pytest.raises(UserError, match="timm VisionTransformer"):
        add_prompts(tiny_cnn())


# ---- layer-wise lr decay (finetune --layer-decay) -------------------------------------------

def test_layer_decay_groups_follow_the_decay_from_the_head():
    enc = tiny_cnn()
    model = Classifier(enc.module, enc.feature_dim, NUM_CLASSES)
    groups = layer_decay_groups(model, enc, lr=1e-3, head_lr_mult=10.0, decay=0.5)
    by_name = {g["name"]: g for g in groups}
    n = len(enc.layer_groups)
    for i in range(n):
        assert by_name[f"layer{i}"]["lr"] == pytest.approx(1e-3 * 0.5 ** (n - 1 - i))
    assert by_name["head"]["lr"] == pytest.approx(1e-2)
    assert "unassigned" not in by_name  # every backbone parameter belongs to a layer group
    stem = {id(p) for p in by_name["layer0"]["params"]}
    assert stem == {id(p) for k, p in model.backbone.named_parameters() if k.startswith(("conv_stem", "bn1"))}


def test_houlsby_adapter_wraps_attention_that_returns_a_tuple():
    """open_clip blocks use nn.MultiheadAttention, which returns (output, weights)."""
    from bench_plugins.strategies.adapter import add_adapters

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
            self.mlp = torch.nn.Linear(8, 8)

        def forward(self, x):
            x = x + self.attn(x, x, x, need_weights=False)[0]
            return x + self.mlp(x)

    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 8, 8, stride=8)
            self.block = Block()

        def forward(self, x):
            return self.block(self.embed(x).flatten(2).transpose(1, 2)).mean(1)

    torch.manual_seed(0)
    enc = Encoder(name="mha", module=Tower(), feature_dim=8, input_size=16, adapter_targets=["block"])
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = enc.module.eval()(x)
        assert add_adapters(enc, "houlsby", reduction=2) == 2
        torch.nn.init.ones_(enc.module.block.attn.adapter.up.weight)
        assert not torch.allclose(enc.module(x), expected)  # the adapter is on the attention path
        torch.nn.init.zeros_(enc.module.block.attn.adapter.up.weight)
        # (MHA may take its fused fast path once its weights are frozen: equal up to rounding)
        torch.testing.assert_close(enc.module(x), expected, atol=1e-6, rtol=1e-6)
