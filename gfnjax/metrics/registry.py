"""The one table of metric names: direction (is lower or higher better?), label, range.

Used by the CLI summary and progress lines, the CI regression check and the reports, so a new
metric is one entry here.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """name; direction "lower" / "higher" (better) or "none" (diagnostic); label (plots, docs);
    nonnegative (plot bands are clipped at 0); summary (a column of the CLI summary table);
    progress (shown in the CLI progress lines)."""

    name: str
    direction: str
    label: str
    nonnegative: bool = False
    summary: bool = False
    progress: bool = False


_ALL = [
    MetricInfo(
        "tv", "lower", "exact TV = ½ Σ_x |P_T(x) − π(x)| (DP over all terminals)", True, True, True
    ),
    MetricInfo("kl", "lower", "exact KL(π ‖ P_T)", True, True),
    MetricInfo("kl_reverse", "lower", "exact KL(P_T ‖ π)", True),
    MetricInfo("jsd", "lower", "exact Jensen–Shannon divergence", True, True),
    MetricInfo("log_z", "none", "the algorithm's log Z estimate"),
    MetricInfo("log_z_error", "lower", "|log Z_θ − log Z*|", True, True),
    MetricInfo(
        "l1",
        "lower",
        "empirical L1 (Tiapkin et al.) = mean_x |π̂(x) − π(x)|, π̂ = last training terminals "
        "(= 2·TV(π̂, π)/|X|, not TV)",
        True,
        True,
        True,
    ),
    MetricInfo(
        "elbo", "higher", "ELBO = E_{P_F} [log R + log P_B − log P_F] (≤ log Z)", False, True, True
    ),
    MetricInfo(
        "eubo",
        "lower",
        "EUBO = E_{π, P_B} [log R + log P_B − log P_F] (≥ log Z)",
        False,
        True,
        True,
    ),
    MetricInfo(
        "pearson",
        "higher",
        "Pearson correlation of log P_θ(x) with log R(x) on the test set",
        False,
        True,
        True,
    ),
    MetricInfo(
        "spearman",
        "higher",
        "Spearman correlation of log P_θ(x) with log R(x) on the test set",
        False,
        True,
    ),
    MetricInfo("test_log_prob", "none", "mean Monte-Carlo log P_θ(x) over the test set"),
    MetricInfo("modes", "higher", "distinct modes found so far in training", True, True, True),
    MetricInfo(
        "top_k_reward",
        "higher",
        "mean reward of the k best distinct objects sampled so far",
        True,
        True,
    ),
    MetricInfo(
        "top_k_log_reward", "higher", "mean log-reward of the k best distinct objects so far"
    ),
    MetricInfo("top_k_score", "higher", "mean score of the k best distinct molecules so far", True),
    MetricInfo(
        "validity", "higher", "fraction of samples RDKit accepts as molecules", True, True, True
    ),
    MetricInfo("uniqueness", "higher", "distinct canonical SMILES / samples", True, True),
    MetricInfo(
        "novelty", "higher", "fraction of valid samples absent from the reference set", True, True
    ),
    MetricInfo(
        "diversity", "higher", "mean pairwise Tanimoto distance (Morgan r=2) of samples", True, True
    ),
    MetricInfo("mean_score", "higher", "mean score of the samples", True),
    MetricInfo(
        "mean_sa", "lower", "mean SA score of the samples (1 = easy, 10 = hard)", True, True
    ),
    MetricInfo(
        "filter_pass", "higher", "fraction of samples passing the PAINS/Brenk filters", True, True
    ),
    MetricInfo("mean_log_reward", "higher", "mean log R of the training samples"),
    MetricInfo("train_loss", "none", "training loss (mean over the evaluation period)"),
    MetricInfo("diverged", "lower", "1 when the run stopped on a non-finite loss or parameter"),
]
METRICS: dict[str, MetricInfo] = {m.name: m for m in _ALL}


def info(name: str) -> MetricInfo:
    """The registry entry of `name` ("train_<x>" diagnostics fall back to <x>'s label)."""
    if name in METRICS:
        return METRICS[name]
    base = METRICS.get(name.removeprefix("train_"))
    if base is not None and name.startswith("train_"):
        return MetricInfo(name, "none", f"{base.label} (training batches, period mean)")
    return MetricInfo(name, "none", name)


def direction(name: str) -> str:
    return info(name).direction


def summary_metrics() -> list[str]:
    return [m.name for m in _ALL if m.summary]


def progress_metrics() -> list[str]:
    return [m.name for m in _ALL if m.progress]


def nonnegative(name: str) -> bool:
    return info(name).nonnegative
