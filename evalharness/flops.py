"""Inference FLOPs per record that still hold when the thinking is long (frames in, frames out).

Convention (Kaplan et al. 2020, Table 1): a forward pass over one token costs

    2 * N  +  2 * n_layers * n_ctx * d_attn

where N is the *non-embedding* parameter count (token embedding and, when untied, the output
embedding excluded; the per-token embedding lookup is free and Kaplan leaves the unembedding
matmul out too), n_ctx the number of tokens the token attends to (itself included) and
d_attn = num_attention_heads * head_dim (query heads: with grouped-query attention the keys and
values are shared, but QK^T still runs at the full query width). The second term is Kaplan's
attention-logit count; it is the one that grows with the context, so at long thinking it is the
term that moves. (Counting the value-weighted sum as well would double it; we keep Kaplan's
constant so the numbers compare with the scaling-law literature.)

A record with P prompt tokens and G generated tokens (thinking + forced end marker + answer)
processes L = P + G positions; position i (1-based) attends to i tokens, prefill included, so

    flops = 2 * N * L  +  2 * n_layers * d_attn * L * (L + 1) / 2.

These are the FLOPs a standalone run at that budget pays: the one-pass sweep shares prefixes
between budgets, but a user choosing budget T pays for T. When a model has no config (a hub
model whose manifest lacks one), the rule falls back to 2 * params * L with params the total
count as recorded, and says so in ``flops_rule``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

RULE_ATTENTION = "2*N_nonemb*L + 2*n_layers*d_attn*L(L+1)/2 (Kaplan; prefill included)"
RULE_FALLBACK = "2*params*L (no model config: attention term and embedding split unknown)"


def _get(cfg: Mapping, *names: str, default=None):
    for n in names:
        if cfg.get(n) is not None:
            return cfg[n]
    return default


def attention_width(config: Mapping) -> int:
    """d_attn = query heads * head_dim (head_dim defaults to hidden_size / heads)."""
    heads = int(_get(config, "num_attention_heads", "heads"))
    hidden = int(_get(config, "hidden_size", "hidden"))
    head_dim = int(_get(config, "head_dim", default=hidden // heads))
    return heads * head_dim


def non_embedding_params(config: Mapping) -> int:
    """Non-embedding parameters of a Llama-style decoder from its config.

    Per layer: q and o projections (hidden x heads*head_dim each), k and v projections
    (hidden x kv_heads*head_dim each), the gated MLP (3 x hidden x intermediate) and two RMS
    norms; plus the final norm. Embeddings (input, and output when untied) are excluded.
    """
    layers = int(_get(config, "num_hidden_layers", "layers"))
    hidden = int(_get(config, "hidden_size", "hidden"))
    heads = int(_get(config, "num_attention_heads", "heads"))
    kv = int(_get(config, "num_key_value_heads", default=heads))
    head_dim = int(_get(config, "head_dim", default=hidden // heads))
    inter = int(config["intermediate_size"])
    attn = 2 * hidden * heads * head_dim + 2 * hidden * kv * head_dim
    per_layer = attn + 3 * hidden * inter + 2 * hidden
    return layers * per_layer + hidden


def record_flops(
    prompt_tokens: np.ndarray | pd.Series,
    generated_tokens: np.ndarray | pd.Series,
    n_params: float,
    n_layers: float = math.nan,
    d_attn: float = math.nan,
) -> np.ndarray:
    """FLOPs of each record (see the module docstring); without n_layers/d_attn (NaN) only
    the 2 * n_params * L term is counted."""
    length = np.asarray(prompt_tokens, dtype=float) + np.asarray(generated_tokens, dtype=float)
    dense = 2.0 * float(n_params) * length
    if not (math.isfinite(n_layers) and math.isfinite(d_attn)):
        return dense
    # sum over positions i = 1..L of the context i: L(L+1)/2
    return dense + 2.0 * n_layers * d_attn * length * (length + 1) / 2


def model_flops_terms(config: Mapping | None, params: float, non_embedding: float | None = None):
    """(N used for the 2N term, n_layers, d_attn, rule) for one model.

    With a config: N = `non_embedding` when recorded, else counted from the config. Without
    one: N = `params` (total, as recorded) and no attention term.
    """
    if not config:
        return float(params), math.nan, math.nan, RULE_FALLBACK
    n = non_embedding if non_embedding is not None and np.isfinite(non_embedding) else None
    if n is None:
        n = non_embedding_params(config)
    layers = float(_get(config, "num_hidden_layers", "layers"))
    return float(n), layers, float(attention_width(config)), RULE_ATTENTION


def add_flops(records: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """`records` (model, params, prompt_tokens, generated_tokens) with ``flops`` and
    ``flops_rule`` per record added (a copy).

    `models` has one row per model: model, config (dict or None), non_embedding_params (or
    NaN). Models missing from it use the fallback rule.
    """
    out = records.copy()
    out["flops"] = np.nan
    out["flops_rule"] = RULE_FALLBACK
    info = models.set_index("model") if not models.empty else pd.DataFrame()
    for model, idx in out.groupby("model", sort=False).groups.items():
        rows = out.loc[idx]
        params = float(pd.to_numeric(rows["params"], errors="coerce").iloc[0])
        cfg, ne = None, None
        if not info.empty and model in info.index:
            cfg = info.at[model, "config"]
            ne = info.at[model, "non_embedding_params"] if "non_embedding_params" in info else None
            ne = float(ne) if ne is not None and pd.notna(ne) else None
        n, layers, d_attn, rule = model_flops_terms(cfg, params, ne)
        out.loc[idx, "flops"] = record_flops(
            rows["prompt_tokens"], rows["generated_tokens"], n, layers, d_attn
        )
        out.loc[idx, "flops_rule"] = rule
    return out
