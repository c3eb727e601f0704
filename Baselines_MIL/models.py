"""Multiple-instance-learning baselines: DeepMIL, ARNet, RTFM, MGFN.

All four score every (variable, week, pixel) instance from per-variable encoder
features ``[N, V, D, T, H, W]`` (the project's shared encoders) with an instance
scorer MLP; a driver flag is score > 0.5. They differ in the feature path and the
loss (Baselines_MIL/losses.py):

- DeepMIL, ARNet: encoder -> MLP.
- RTFM: encoder -> cross-variable attention ("agent") -> multi-scale dilated 2-D
  aggregator -> MLP; instances ranked by feature magnitude.
- MGFN: encoder -> agent -> time average -> glance-and-focus head over each
  variable's pixel sequence; one score per (variable, pixel), repeated over weeks.

Parameter names follow the published baselines (``baseline_keys_<method>.txt``):
``encoder.``, ``agent.``, ``Aggregate.``, ``classifier.``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from Baselines_MIL import losses
from models.encoder import build_encoder
from models.encoder.common import make_proj_var, run_proj_var
from models.methods import MethodSpec, ScoreOutput, register_method
from models.weight_init import init_weights
from utils.option_sections import EncoderOptions

METHODS = ("deepmil", "arnet", "rtfm", "mgfn")


# --------------------------------------------------------------------------------------
# instance scorer
# --------------------------------------------------------------------------------------


class InstanceMLP(nn.Module):
    """D -> 512 -> 256 -> 1 (ReLU, dropout); returns logits (sigmoid = instance score)."""

    def __init__(self, in_dim: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        dims = [in_dim, *hidden]
        layers = [
            nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)) for a, b in zip(dims, dims[1:])
        ]
        layers.append(nn.Sequential(nn.Linear(dims[-1], 1)))
        self.mlp_layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.mlp_layers:
            x = layer(x)
        return x.squeeze(-1)


# --------------------------------------------------------------------------------------
# cross-variable attention ("agent", RTFM and MGFN)
# --------------------------------------------------------------------------------------


class CrossAttention(nn.Module):
    """Queries from one variable, keys/values from the other variables at the same voxel.

    All keys share one relative position (same voxel), so the published 1-entry
    relative-position bias is a per-head constant; it is kept for the layout.
    """

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.scale = (dim // n_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros(1, n_heads))
        self.register_buffer("relative_position_index", torch.zeros(1, 1, dtype=torch.long))
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        """query [M, D], context [M, K, D] -> [M, D]."""
        m, k, d = context.shape
        h = self.n_heads
        q = self.q(query).view(m, h, 1, d // h)
        kv = self.kv(context).view(m, k, 2, h, d // h).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(1, h, 1, 1)
        attn = (q * self.scale) @ kv[0].transpose(-2, -1) + bias
        out = attn.softmax(-1) @ kv[1]
        return self.proj(out.reshape(m, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, int(dim * ratio))
        self.fc2 = nn.Linear(int(dim * ratio), dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class CrossBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm1_con = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, n_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), self.norm1_con(context))
        return x + self.mlp(self.norm2(x))


class CrossStage(nn.Module):
    def __init__(self, dim: int, n_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([CrossBlock(dim, n_heads, mlp_ratio)])


class CrossVariableAgent(nn.Module):
    """Each variable's features attend to the other variables' features at the same voxel."""

    def __init__(self, n_vars: int, dim: int, n_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.n_vars = n_vars
        self.layers_var = nn.ModuleList(
            nn.ModuleList([CrossStage(dim, n_heads, mlp_ratio)]) for _ in range(n_vars)
        )
        self.proj_var = nn.ModuleList(make_proj_var(dim, dim) for _ in range(n_vars))

    def forward(self, z: Tensor) -> Tensor:
        n, v, d, t, h, w = z.shape
        tokens = z.permute(0, 3, 4, 5, 1, 2).reshape(-1, v, d)  # [M, V, D]
        outs = []
        for i in range(v):
            others = [j for j in range(v) if j != i] or [i]
            block = self.layers_var[i][0].blocks[0]
            outs.append(block(tokens[:, i], tokens[:, others]))
        y = torch.stack(outs, 1).view(n, t, h, w, v, d).permute(0, 4, 5, 1, 2, 3)
        y = run_proj_var(self.proj_var, y.reshape(n, v * d, t, h, w), v)
        return y.view(n, v, d, t, h, w)


# --------------------------------------------------------------------------------------
# RTFM aggregator
# --------------------------------------------------------------------------------------


class Aggregate(nn.Module):
    """Multi-scale dilated 2-D convolutions over each (variable, week) field, plus a residual."""

    def __init__(self, dim: int, width: int = 32) -> None:
        super().__init__()
        for i, dil in enumerate((1, 2, 4), start=1):
            conv = nn.Sequential(
                nn.Conv2d(dim, width, 3, padding=dil, dilation=dil), nn.ReLU(), nn.BatchNorm2d(width)
            )
            self.add_module(f"conv_{i}", conv)
        self.conv_4 = nn.Sequential(nn.Conv2d(dim, width, 1, bias=False), nn.ReLU())
        self.conv_5 = nn.Sequential(
            nn.Conv2d(4 * width, dim, 3, padding=1, bias=False), nn.ReLU(), nn.BatchNorm2d(dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        """x [B, D, H, W] -> [B, D, H, W]."""
        y = torch.cat([self.conv_1(x), self.conv_2(x), self.conv_3(x), self.conv_4(x)], 1)
        return self.conv_5(y) + x


# --------------------------------------------------------------------------------------
# MGFN head
# --------------------------------------------------------------------------------------


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of [B, C, L] (published parameters ``g``, ``b``)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        var, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.g + self.b


class Focus(nn.Module):
    """MGFN focus block: per-head local aggregation (grouped 1-D conv) of value projections."""

    def __init__(self, dim: int, n_heads: int, dim_head: int = 64, kernel: int = 5) -> None:
        super().__init__()
        self.n_heads, self.dim_head = n_heads, dim_head
        self.norm = nn.BatchNorm1d(dim)
        self.to_v = nn.Conv1d(dim, n_heads * dim_head, 1, bias=False)
        self.rel_pos = nn.Conv1d(n_heads, n_heads, kernel, padding=kernel // 2, groups=n_heads)
        self.to_out = nn.Conv1d(n_heads * dim_head, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, length = x.shape
        v = self.to_v(self.norm(x)).view(b, self.n_heads, self.dim_head, length)
        v = v.transpose(1, 2).reshape(b * self.dim_head, self.n_heads, length)
        v = self.rel_pos(v).view(b, self.dim_head, self.n_heads, length).transpose(1, 2)
        return self.to_out(v.reshape(b, -1, length))


class FocusBackbone(nn.Module):
    def __init__(self, dim: int, n_heads: int, ff_mult: int = 4) -> None:
        super().__init__()
        ff = nn.Sequential(
            ChannelNorm(dim),
            nn.Conv1d(dim, dim * ff_mult, 1),
            nn.GELU(),
            nn.Dropout(0.0),
            nn.Conv1d(dim * ff_mult, dim, 1),
        )
        self.layers = nn.ModuleList(
            [nn.ModuleList([nn.Conv1d(dim, dim, 3, padding=1), Focus(dim, n_heads), ff])]
        )

    def forward(self, x: Tensor) -> Tensor:
        for scc, focus, ff in self.layers:
            x = scc(x) + x
            x = focus(x) + x
            x = ff(x) + x
        return x


class MGFNHead(nn.Module):
    """Magnitude-augmented features -> focus stages -> per-position logits and features.

    The published layout has no token projection from the encoder width D to the
    first stage width; the magnitude-augmented features are tiled to that width
    (parameter-free) so the published parameters load unchanged.
    """

    def __init__(self, in_dim: int, dims: list[int], heads: list[int], mag_ratio: float) -> None:
        super().__init__()
        if dims[0] % in_dim:
            raise ValueError(
                f"option 'mgfn_dims': first width {dims[0]} must be a multiple of the encoder width {in_dim}"
            )
        if len(heads) != len(dims):
            raise ValueError(f"options 'mgfn_heads' {heads} and 'mgfn_dims' {dims} need the same length")
        self.mag_ratio, self.repeat = mag_ratio, dims[0] // in_dim
        self.to_mag = nn.Conv1d(1, in_dim, 3, padding=1)
        stages = []
        for i, (dim, h) in enumerate(zip(dims, heads)):
            nxt = (
                nn.Sequential(ChannelNorm(dim), nn.Conv1d(dim, dims[i + 1], 1)) if i + 1 < len(dims) else None
            )
            stages.append(nn.ModuleList([FocusBackbone(dim, h), nxt]))
        self.stages = nn.ModuleList(stages)
        self.to_logits = nn.LayerNorm(dims[-1])
        self.fc = nn.Linear(dims[-1], 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, D, L] -> logits [B, L], features [B, L, D_last]."""
        x = x + self.mag_ratio * self.to_mag(x.norm(dim=1, keepdim=True))
        x = x.repeat(1, self.repeat, 1)
        for backbone, transition in self.stages:
            x = backbone(x)
            if transition is not None:
                x = transition(x)
        feat = self.to_logits(x.transpose(1, 2))
        return self.fc(feat).squeeze(-1), feat


# --------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------


class MILModel(nn.Module):
    """Weakly supervised instance scorer; ``method`` in deepmil | arnet | rtfm | mgfn."""

    def __init__(self, cfg) -> None:
        super().__init__()
        if cfg.method not in METHODS:
            raise ValueError(f"option 'method': {cfg.method!r} is not a MIL method ({', '.join(METHODS)})")
        self.cfg, self.method = cfg, cfg.method
        dim = cfg.codebook_dim  # encoder output width
        self.encoder = build_encoder(cfg.section(EncoderOptions), len(cfg.variables), cfg.in_channels, cfg.codebook_dim)
        if self.method in ("rtfm", "mgfn"):
            self.agent = CrossVariableAgent(len(cfg.variables), dim, cfg.en_n_heads[-1], cfg.en_mlp_ratio)
        if self.method == "rtfm":
            self.Aggregate = Aggregate(dim)
        if self.method == "mgfn":
            self.classifier = MGFNHead(dim, cfg.mgfn_dims, cfg.mgfn_heads, cfg.mgfn_mag_ratio)
        else:
            self.classifier = InstanceMLP(dim, cfg.mil_hidden, cfg.mil_dropout)
        init_weights(self, cfg.init)
        p = 0.5 if cfg.driver_threshold is None else float(cfg.driver_threshold)
        self.threshold = math.log(p / (1 - p)) if 0 < p < 1 else math.inf  # on the logit: sigmoid > p

    def forward(self, x: Tensor) -> ScoreOutput:
        z = self.encoder(x)  # [N, V, D, T, H, W]
        n, v, d, t, h, w = z.shape
        magnitude = None
        if self.method in ("rtfm", "mgfn"):
            z = self.agent(z)
        if self.method == "rtfm":
            z = (
                self.Aggregate(z.transpose(2, 3).reshape(n * v * t, d, h, w))
                .view(n, v, t, d, h, w)
                .transpose(2, 3)
            )
        if self.method == "mgfn":
            seq = z.mean(3).reshape(n * v, d, h * w)
            logit, feat = self.classifier(seq)
            logit = logit.view(n, v, 1, h, w).expand(n, v, t, h, w)
            magnitude = feat.norm(dim=-1).view(n, v, 1, h, w).expand(n, v, t, h, w)
        else:
            logit = self.classifier(z.permute(0, 1, 3, 4, 5, 2))  # [N, V, T, H, W]
            if self.method == "rtfm":
                magnitude = z.norm(dim=2)
        return ScoreOutput.from_scores(logit, self.threshold, magnitude=magnitude)

    def compute_loss(self, out: ScoreOutput, batch: dict) -> tuple[Tensor, dict]:
        """Top-k bag losses; rows = (sample, week), instances = (variable, pixel); invalid pixels dropped."""
        cfg = self.cfg
        logit = out.score
        n, v, t, h, w = logit.shape
        rows = 1 if self.method == "mgfn" else t  # MGFN scores do not vary over weeks
        pos = batch["mask_extreme_loss"] > 0.5
        valid = batch["mask_valid"] > 0.5 if "mask_valid" in batch else torch.ones_like(pos)
        if cfg.mil_topk_per == "variable":  # rows (sample, variable, week), instances = pixels
            def to_rows(x: Tensor) -> Tensor:
                return x[:, :, :rows].reshape(n, v * rows, h * w)

            pos_i = (pos & valid).view(n, 1, h * w)
            neg_i = (~pos & valid).view(n, 1, h * w)
        else:  # rows (sample, week), instances = (variable, pixel)
            def to_rows(x: Tensor) -> Tensor:
                return x[:, :, :rows].transpose(1, 2).reshape(n, rows, v * h * w)

            pos_i = (pos & valid).view(n, 1, 1, h * w).expand(n, 1, v, h * w).reshape(n, 1, v * h * w)
            neg_i = (~pos & valid).view(n, 1, 1, h * w).expand(n, 1, v, h * w).reshape(n, 1, v * h * w)
        logit = to_rows(logit)
        frac = cfg.mil_topk_fraction
        if self.method == "deepmil":
            p = cfg.mil_instance_dropout if self.training else 0.0
            return losses.deepmil_loss(logit, pos_i, neg_i, cfg.mil_topk, p, frac, cfg.mil_match_bags)
        if self.method == "arnet":
            return losses.arnet_loss(logit, pos_i, neg_i, cfg.mil_topk, cfg.arnet_lambda_center, frac)
        mag = to_rows(out.extra["magnitude"])
        if self.method == "rtfm":
            return losses.rtfm_loss(
                logit, mag, pos_i, neg_i, cfg.mil_topk, cfg.rtfm_alpha, cfg.rtfm_margin, frac
            )
        return losses.mgfn_loss(
            logit, mag, pos_i, neg_i, cfg.mil_topk, cfg.mgfn_lambda_mc, cfg.rtfm_margin, frac
        )


# one top-k per variable for DeepMIL and ARNet in the table: with one per (sample, week) a single
# variable fills the positive top-k (docs/results/baselines.md); RTFM and MGFN keep the published grouping.
# DeepMIL compares bags of equal size: without, its hinge collapsed to one constant score on 2 of 3 seeds
for _name, _label, _defaults in (
    ("deepmil", "DeepMIL", {"mil_topk_per": "variable", "mil_match_bags": True}),
    ("arnet", "ARNet", {"mil_topk_per": "variable"}),
    ("rtfm", "RTFM", {}),
    ("mgfn", "MGFN", {}),
):
    register_method(MethodSpec(_name, _label, build=MILModel, family="MIL", table_defaults=_defaults,
                               summary=f"{_label}: weakly supervised instance scores, flag = score > 0.5"))
