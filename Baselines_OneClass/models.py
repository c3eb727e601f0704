"""One-class baselines: SimpleNet, OCSVM and Isolation Forest.

They learn what normal voxels look like and flag the rest: a voxel's driver
score is its outlier score, and the flag is score > a threshold chosen on the
validation split (utils.metrics.ScoreThreshold), never on test labels.

- SimpleNet (Liu et al. 2023): features of a frozen pretrained encoder (an IDE
  checkpoint), adapted by a linear projection; a discriminator learns to tell
  them from the same features plus Gaussian noise. Parameter names follow the
  published model (``pre_projection``, ``discriminator``; the frozen backbone is
  ``backbone.encoder`` and loads from ``baseline_keys_SimpleNet_backbone.txt``).
- OCSVM / Isolation Forest (scikit-learn): one model per variable on the
  normalised values of a short temporal neighbourhood of each voxel, fitted on
  a random subsample of voxels of extreme-free pixels during the single training
  epoch. The fitted models are kept as tensors (support vectors; tree arrays), so
  checkpoints hold no pickles and scoring runs on any device.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.build import extract_state_dict
from models.encoder import build_encoder
from models.methods import MethodSpec, ScoreOutput, ThresholdedScores, register_method
from utils.checkpoints import read_checkpoint
from utils.errors import ConfigError
from utils.option_sections import EncoderOptions

METHODS = ("simplenet", "ocsvm", "iforest")


def extreme_free(batch: dict) -> Tensor:
    """Bool [N, H, W]: pixels with no extreme in the window (and valid, on real data)."""
    normal = batch["mask_extreme_loss"] < 0.5
    if "mask_valid" in batch:
        normal = normal & (batch["mask_valid"] > 0.5)
    return normal


# --------------------------------------------------------------------------------------
# SimpleNet
# --------------------------------------------------------------------------------------


class Backbone(nn.Module):
    """Frozen per-variable encoder (published attribute ``encoder``)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.encoder = build_encoder(cfg.section(EncoderOptions), len(cfg.variables), cfg.in_channels, cfg.codebook_dim)


class Projection(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential()
        self.layers.add_module("0fc", nn.Linear(in_dim, out_dim, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class Discriminator(nn.Module):
    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential()
        self.body.add_module(
            "block1", nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2))
        )
        self.tail = nn.Linear(hidden, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.tail(self.body(x)).squeeze(-1)


class SimpleNet(ThresholdedScores, nn.Module):
    """Low discriminator score = driver; training inputs see no extremes (replaced by climatology draws)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.codebook_dim  # encoder output width
        self.backbone = Backbone(cfg)
        self.pre_projection = Projection(dim, cfg.simplenet_proj_dim)
        self.discriminator = Discriminator(cfg.simplenet_proj_dim, cfg.simplenet_dsc_hidden)
        if cfg.simplenet_backbone:
            self.load_backbone(cfg.simplenet_backbone)
        else:
            import warnings

            warnings.warn("SimpleNet without --simplenet_backbone: frozen encoder is random", stacklevel=2)
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.threshold = math.inf

    def load_backbone(self, path: str | Path) -> None:
        """Encoder weights from an IDE checkpoint or a published SimpleNet backbone (``encoder.*`` keys)."""
        state = extract_state_dict(read_checkpoint(path, "option 'simplenet_backbone':"), path)
        enc = {k: v for k, v in state.items() if k.startswith("encoder.")}
        if not enc:
            raise ValueError(f"option 'simplenet_backbone': {path} holds no 'encoder.*' weights")
        self.backbone.load_state_dict(enc, strict=True)

    def complete_state_dict(self, state_dict: dict) -> dict:
        """A published SimpleNet file has no backbone: keep the one from ``simplenet_backbone``
        (``models.build.load_checkpoint`` asks before it compares the file with the model)."""
        if any(k.startswith("backbone.") for k in state_dict):
            return state_dict
        return {**{f"backbone.{k}": v for k, v in self.backbone.state_dict().items()}, **state_dict}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        return super().load_state_dict(self.complete_state_dict(state_dict), strict=strict, assign=assign)

    def train(self, mode: bool = True) -> SimpleNet:
        super().train(mode)
        self.backbone.eval()  # frozen: no dropout, fixed statistics
        return self

    def _features(self, x: Tensor) -> Tensor:
        """Projected features [M, P] of every voxel, M = N * V * T * H * W in (n, v, t, h, w) order."""
        with torch.no_grad():
            feat = self.backbone.encoder(x) * self.cfg.simplenet_feature_scale  # [N, V, D, T, H, W]
        return self.pre_projection(feat.movedim(2, -1).reshape(-1, feat.shape[2]))

    def _scores(self, x: Tensor) -> Tensor:
        """Driver scores [N, V, T, H, W] (= -discriminator)."""
        n, v, _, t, h, w = x.shape
        return -self.discriminator(self._features(x)).view(n, v, t, h, w)

    def forward(self, x: Tensor) -> ScoreOutput:
        if self.training:  # training scores need the batch's extreme mask: computed in compute_loss
            n, v, _, t, h, w = x.shape
            return ScoreOutput.from_scores(x.new_zeros(n, v, t, h, w), self.threshold)
        return ScoreOutput.from_scores(self._scores(x), self.threshold)

    def compute_loss(self, out: ScoreOutput, batch: dict) -> tuple[Tensor, dict]:
        """Truncated L1: true features score >= 0.5, noisy ones <= -0.5 (validation: true term only)."""
        if not self.training:
            loss = F.relu(0.5 + out.score).mean()
            return loss, {"true": float(loss)}
        proj = self._features(self.climatology_inputs(batch))
        if "mask_valid" in batch:  # invalid pixels (real data) are not normal data to learn
            n, v, _, t, h, w = batch["x"].shape
            valid = (batch["mask_valid"] > 0.5)[:, None, None].expand(n, v, t, h, w)
            proj = proj[valid.reshape(-1)]
            if len(proj) == 0:  # nothing to learn from in this batch: no step
                return proj.new_zeros(()), {"true": 0.0, "fake": 0.0}
        fake = proj + torch.randn_like(proj) * self.cfg.simplenet_noise_std
        # One discriminator batch for both, as SimpleNet trains it: its BatchNorm then normalises
        # true and noisy features together, with the running statistics that scoring uses. (Two
        # calls gave each its own batch statistics: the discriminator separated them by their
        # shape and scored every evaluation voxel alike, AUROC 0.09 for drivers on `small`.)
        d_true, d_fake = self.discriminator(torch.cat([proj, fake])).split(len(proj))
        # true features D >= 0.5, noisy ones D <= -0.5 (the driver score is -D)
        l_true, l_fake = F.relu(0.5 - d_true).mean(), F.relu(0.5 + d_fake).mean()
        return l_true + l_fake, {"true": float(l_true.detach()), "fake": float(l_fake.detach())}

    @staticmethod
    def climatology_inputs(batch: dict) -> Tensor:
        """Training inputs: at pixels with an extreme in the window, every value is a climatology draw.

        Inputs are normalised by the per-pixel weekly climatology ((x - median) / std), so a draw
        from N(median, std) is N(0, 1) in these units.
        """
        x = batch["x"]
        ext = (batch["mask_extreme_loss"] > 0.5)[:, None, None, None].expand_as(x)
        return torch.where(ext, torch.randn_like(x), x)


# --------------------------------------------------------------------------------------
# OCSVM and Isolation Forest (scikit-learn fits, torch scoring)
# --------------------------------------------------------------------------------------


def voxel_features(x: Tensor, window: int) -> Tensor:
    """x [N, V, C, T, H, W] -> [N, V, T, H, W, C * window]: each voxel's values over +-window//2 weeks."""
    n, v, c, t, h, w = x.shape
    r = window // 2
    y = x.permute(0, 1, 4, 5, 2, 3).reshape(-1, c, t)
    y = F.pad(y, (r, r), mode="replicate") if r else y
    y = y.unfold(-1, window, 1)  # [M, C, T, window]
    return y.permute(0, 2, 1, 3).reshape(n, v, h, w, t, c * window).permute(0, 1, 4, 2, 3, 5)


def _avg_path(n: Tensor) -> Tensor:
    """Average path length of an unsuccessful BST search among n points (Liu et al. 2008)."""
    n = n.to(torch.float64)
    h = torch.log(torch.clamp(n - 1, min=1)) + 0.5772156649015329
    c = 2 * h - 2 * (n - 1) / n.clamp_min(1)
    return torch.where(n > 2, c, torch.where(n == 2, torch.ones_like(n), torch.zeros_like(n)))


class SklearnOutlier(ThresholdedScores, nn.Module):
    """OCSVM (``ocsvm``) or Isolation Forest (``iforest``), one per variable; high score = outlier.

    Fitted state lives in zero-padded buffers whose shapes follow from the options alone (at most
    ``oneclass_n_fit`` support vectors; trees of at most 2 * 256 - 1 nodes), so checkpoints load like
    any other. Fitting happens once, at the end of the first training epoch; later epochs change nothing.
    """

    _FITTED = {
        "ocsvm": ("support", "dual", "intercept", "gamma", "n_support"),
        "iforest": ("feature", "threshold_", "left", "right", "leaf_path", "norm"),
    }

    def __init__(self, cfg) -> None:
        super().__init__()
        check_sklearn_options(cfg)
        self.cfg, self.method = cfg, cfg.method
        self.n_vars, self.window = len(cfg.variables), cfg.oneclass_window
        v, f = self.n_vars, cfg.in_channels * cfg.oneclass_window
        if self.method == "ocsvm":
            shapes = {"support": (v, cfg.oneclass_n_fit, f), "dual": (v, cfg.oneclass_n_fit)}
            shapes.update(intercept=(v,), gamma=(v,), n_support=(v,))
        else:
            nodes = 2 * min(256, cfg.oneclass_n_fit) - 1
            trees = (v, cfg.iforest_n_estimators, nodes)
            shapes = {k: trees for k in ("feature", "threshold_", "left", "right", "leaf_path")}
            shapes["norm"] = (v,)
        for name, shape in shapes.items():
            dtype = torch.int64 if name in ("feature", "left", "right", "n_support") else torch.float32
            self.register_buffer(name, torch.zeros(shape, dtype=dtype))
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))
        self._pool: list[Tensor] = []
        self._gen = torch.Generator().manual_seed(cfg.seed)
        self.threshold = math.inf

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    # ---- fitting: gather during the training epoch, fit at its end
    def fit_epoch_start(self, epoch: int) -> None:
        self._pool = []

    def _gather(self, feat: Tensor, normal: Tensor) -> None:
        """Keep a random subsample of extreme-free voxel vectors per variable ([V, M, F], CPU)."""
        n, v, t, h, w, f = feat.shape
        sel = normal[:, None, :, :].expand(n, t, h, w).reshape(-1).cpu()
        vecs = feat.detach().permute(1, 0, 2, 3, 4, 5).reshape(v, -1, f).cpu()[:, sel]
        k = min(vecs.shape[1], self.cfg.oneclass_n_fit)
        idx = torch.randperm(vecs.shape[1], generator=self._gen)[:k]
        self._pool.append(vecs[:, idx])
        if sum(p.shape[1] for p in self._pool) > 4 * self.cfg.oneclass_n_fit:
            self._pool = [self._subsample(torch.cat(self._pool, 1), 2 * self.cfg.oneclass_n_fit)]

    def _subsample(self, vecs: Tensor, k: int) -> Tensor:
        return vecs[:, torch.randperm(vecs.shape[1], generator=self._gen)[:k]]

    def fit_epoch_end(self, epoch: int) -> None:
        if self.fitted:
            return
        if sum(p.shape[1] for p in self._pool) == 0:
            raise ConfigError(
                f"method {self.method}: the training split has no valid pixel without an extreme in its window "
                "to fit the normal data on; train on a period or region with extreme-free pixels"
            )
        data = self._subsample(torch.cat(self._pool, 1), self.cfg.oneclass_n_fit).double().numpy()
        self._pool = []
        fits = [self._fit_one(d) for d in data]
        for name in self._FITTED[self.method]:
            buf = self.get_buffer(name)
            buf.zero_()
            for v, fit in enumerate(fits):  # zero padding is inert: zero weights, unreachable nodes
                a = torch.as_tensor(np.asarray(fit[name]))
                buf[(v, *(slice(0, n) for n in a.shape))] = a.to(buf)
        self.is_fitted.fill_(True)

    def _fit_one(self, data: np.ndarray) -> dict[str, np.ndarray]:
        if self.method == "ocsvm":
            from sklearn.svm import OneClassSVM

            gamma = 1.0 / (data.shape[1] * max(float(data.var()), 1e-12))  # sklearn's gamma='scale'
            m = OneClassSVM(kernel="rbf", gamma=gamma, nu=self.cfg.ocsvm_nu).fit(data)
            return {
                "support": m.support_vectors_.astype(np.float32),
                "dual": m.dual_coef_[0].astype(np.float32),
                "intercept": np.float32(m.intercept_[0]),
                "gamma": np.float32(gamma),
                "n_support": np.int64(len(m.support_vectors_)),
            }
        from sklearn.ensemble import IsolationForest

        m = IsolationForest(n_estimators=self.cfg.iforest_n_estimators, random_state=self.cfg.seed).fit(data)
        size = max(e.tree_.node_count for e in m.estimators_)
        kinds = {"feature": np.int64, "threshold_": np.float32, "left": np.int64, "right": np.int64}
        kinds["leaf_path"] = np.float32
        arr = {k: np.zeros((len(m.estimators_), size), dt) for k, dt in kinds.items()}
        for i, (est, feats) in enumerate(zip(m.estimators_, m.estimators_features_)):
            tr, c = est.tree_, est.tree_.node_count
            depth = tr.compute_node_depths()[:c] - 1  # root = 0
            leaf = tr.children_left[:c] < 0
            arr["feature"][i, :c] = np.where(leaf, 0, feats[np.clip(tr.feature[:c], 0, None)])
            arr["threshold_"][i, :c] = tr.threshold[:c]
            arr["left"][i, :c] = np.where(leaf, np.arange(c), tr.children_left[:c])
            arr["right"][i, :c] = np.where(leaf, np.arange(c), tr.children_right[:c])
            n_leaf = torch.as_tensor(tr.n_node_samples[:c])
            arr["leaf_path"][i, :c] = np.where(leaf, depth + _avg_path(n_leaf).numpy(), 0)
        arr["norm"] = np.float32(_avg_path(torch.tensor(float(m.max_samples_))).item())
        return arr

    # ---- scoring
    def _score_var(self, vecs: Tensor, v: int) -> Tensor:
        """Outlier score of [M, F] vectors of variable v (chunked to bound memory)."""
        out = []
        for chunk in vecs.split(65536):
            if self.method == "ocsvm":
                k = int(self.n_support[v])
                d2 = torch.cdist(chunk, self.support[v, :k]).pow(2)
                dec = (torch.exp(-self.gamma[v] * d2) * self.dual[v, :k]).sum(-1) + self.intercept[v]
                out.append(-dec)
                continue
            n_trees, size = self.feature.shape[1:]
            offset = torch.arange(n_trees, device=chunk.device) * size
            feature, thr = self.feature[v].reshape(-1), self.threshold_[v].reshape(-1)
            left, right = self.left[v].reshape(-1), self.right[v].reshape(-1)
            node = offset.expand(chunk.shape[0], n_trees)  # flat index tree * size + node
            for _ in range(size):  # leaves point to themselves: stop when nothing moves
                go_left = chunk.gather(1, feature[node]) <= thr[node]
                nxt = torch.where(go_left, left[node], right[node]) + offset
                if torch.equal(nxt, node):
                    break
                node = nxt
            path = self.leaf_path[v].reshape(-1)[node].mean(1)
            out.append(torch.pow(2.0, -path / self.norm[v]))
        return torch.cat(out)

    def forward(self, x: Tensor) -> ScoreOutput:
        feat = voxel_features(x, self.window)  # [N, V, T, H, W, F]
        n, v, t, h, w, f = feat.shape
        if self.training or not self.fitted:
            return ScoreOutput.from_scores(
                torch.zeros(n, v, t, h, w, device=x.device), self.threshold, feat=feat
            )
        score = torch.stack(
            [self._score_var(feat[:, i].reshape(-1, f), i).view(n, t, h, w) for i in range(v)], 1
        )
        return ScoreOutput.from_scores(score.float(), self.threshold)

    def compute_loss(self, out: ScoreOutput, batch: dict) -> tuple[Tensor, dict]:
        if self.training and not self.fitted:
            self._gather(out.extra["feat"], extreme_free(batch))
        return torch.zeros((), device=out.score.device), {}


def check_sklearn_options(cfg) -> None:
    """An even window has no centre week: refused before training (the fit would crash after the epoch)."""
    w = cfg.oneclass_window
    if w < 1 or w % 2 == 0:
        raise ValueError(
            f"option 'oneclass_window' is {w}; the weeks are centred on the voxel, so give an odd number "
            "of 1 or more (e.g. 3)"
        )


def _needs_backbone(cfg) -> None:
    if not cfg.simplenet_backbone:
        raise ValueError(
            "option 'simplenet_backbone' is not set: SimpleNet scores the features of a trained, frozen "
            "encoder and would use a random one; train IDE with the same encoder first and pass "
            "--simplenet_backbone RUN/best_driver_F1_model.pth (scripts/benchmark_table.py does this for its "
            "IDE rows)"
        )


register_method(MethodSpec("ocsvm", "OCSVM", build=SklearnOutlier, scores=True, family="one-class",
                           table_options={"n_epochs": 1}, check_training=check_sklearn_options,
                           summary="one-class SVM on per-voxel features"))
register_method(MethodSpec("iforest", "Isolation Forest", build=SklearnOutlier, scores=True, family="one-class",
                           table_options={"n_epochs": 1}, check_training=check_sklearn_options,
                           summary="isolation forest on per-voxel features"))
register_method(MethodSpec("simplenet", "SimpleNet", build=SimpleNet, scores=True, family="one-class",
                           check_training=_needs_backbone,
                           summary="SimpleNet: discriminator on a frozen IDE encoder's features"))
