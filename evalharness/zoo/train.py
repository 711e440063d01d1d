"""Training recipe for the built-in model zoo (v2): one family of tiny Llama models, one recipe.

Every member has the same attention: 2 layers of 4 heads of size 32 (vLLM's CPU attention kernel
supports no smaller head; ``head_dim`` decouples it from the residual width). Sizes differ only in
the residual width (the MLP is 4x the width), so the number of heads cannot stand in for size, as
it did in the first zoo (2 heads below h96, 3-4 above, where its add5 jump sat). Every size is
trained from 3 seeds; a seed sets both the initialisation and the order of the training stream,
so the seed-to-seed spread is the uncertainty of "a model of this size" under this recipe. The
learning rate is one constant for every size (warm-up, then cosine decay to 0).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from evalharness import synth
from evalharness.zoo import ZOO_DIR, tensor_sizes
from evalharness.zoo.tokenizer import END_THINK, THINK, build_tokenizer

HEADS = 4
HEAD_DIM = 32
LAYERS = 2
# Residual widths, roughly log-spaced (11 sizes, 10.6K to 538K parameters = 51x).
WIDTHS = (8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128)
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Size:
    hidden: int
    seed: int = 0
    heads: int = HEADS
    layers: int = LAYERS

    @property
    def name(self) -> str:
        return f"arith-h{self.hidden}-s{self.seed}"


SIZES = [Size(w, s) for s in SEEDS for w in WIDTHS]


@dataclass(frozen=True)
class Recipe:
    steps: int = 1000
    batch: int = 128
    warmup: int = 30
    lr: float = 3e-3  # the same for every width
    mul_share: float = 0.15
    cut_share: float = 0.10  # examples whose thinking is cut and the answer forced
    max_len: int = 512


def model_config(size: Size, vocab: int, tok) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab, hidden_size=size.hidden, intermediate_size=4 * size.hidden,
        num_hidden_layers=size.layers, num_attention_heads=size.heads,
        num_key_value_heads=size.heads, head_dim=HEAD_DIM, max_position_embeddings=512,
        tie_word_embeddings=True, rms_norm_eps=1e-5, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=None, torch_dtype="float32",
    )


def encode_example(p: synth.Arith, tok, rng: np.random.Generator, cut_share: float):
    """Token ids and loss mask: loss on thinking, ``</think>``, answer and ``<eos>``.

    A `cut_share` of examples have their thinking cut at a random point and ``</think>`` forced,
    so that answering after a forced end is defined behaviour; that forced marker gets no loss.
    """
    prompt = tok.encode(p.prompt + THINK)
    think = tok.encode(p.thinking)
    end = tok.convert_tokens_to_ids(END_THINK)
    answer = tok.encode(p.answer) + [tok.eos_token_id]
    forced = rng.random() < cut_share
    if forced:
        think = think[: int(rng.integers(0, len(think)))]
    ids = prompt + think + [end] + answer
    mask = [0] * len(prompt) + [1] * len(think) + [0 if forced else 1] + [1] * len(answer)
    return ids, mask


def batches(recipe: Recipe, tok, exclude: set[str], seed: int = 0):
    """Endless padded batches; `seed` sets the stream of problems and which thinking is cut."""
    stream = synth.training_stream(seed, exclude, recipe.mul_share)
    rng = np.random.default_rng(seed + 1)
    while True:
        rows = [encode_example(next(stream), tok, rng, recipe.cut_share) for _ in range(recipe.batch)]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        labels = torch.full((len(rows), width), -100)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, m) in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            attn[i, : len(r)] = 1
            labels[i, : len(r)] = torch.tensor([t if k else -100 for t, k in zip(r, m, strict=True)])
        yield ids, attn, labels


def train_one(size: Size, recipe: Recipe, out_dir: Path, exclude: set[str]) -> dict:
    torch.set_num_threads(1)  # two sizes train side by side, one core each
    torch.manual_seed(size.seed)
    tok = build_tokenizer()
    model = LlamaForCausalLM(model_config(size, len(tok), tok))
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.01)

    def schedule(step: int) -> float:
        if step < recipe.warmup:
            return (step + 1) / recipe.warmup
        progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    tokens = 0
    t0 = time.time()
    model.train()
    for step, (ids, attn, labels) in zip(range(recipe.steps), batches(recipe, tok, exclude, size.seed),
                                          strict=False):
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens += int(attn.sum())
        if step % 100 == 0 or step == recipe.steps - 1:
            print(f"[{size.name}] step {step:4d} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                  flush=True)
    model.eval()
    path = out_dir / size.name
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    entry = manifest_entry(size, recipe, path, tokens, loss.item(), time.time() - t0)
    # each checkpoint carries its own entry, so an interrupted training resumes where it stopped
    (path / "zoo_entry.json").write_text(json.dumps(entry, indent=2) + "\n")
    return entry


def manifest_entry(size: Size, recipe: Recipe, path: Path, tokens: int, final_loss: float,
                   seconds: float) -> dict:
    """What the zoo manifest says of one trained checkpoint (read back from disk)."""
    sizes = tensor_sizes(path)
    n_params = sum(sizes.values())
    n_embed = sizes["model.embed_tokens.weight"]
    return {
        "name": f"zoo/{size.name}",
        "path": size.name,
        "size": f"h{size.hidden}",
        "params": n_params,
        "non_embedding_params": n_params - n_embed,
        "layers": size.layers,
        "hidden": size.hidden,
        "intermediate": 4 * size.hidden,
        "heads": size.heads,
        "head_dim": HEAD_DIM,
        "steps": recipe.steps,
        "batch": recipe.batch,
        "lr": recipe.lr,
        "tokens": tokens,
        "train_flops": 6 * n_params * tokens,
        "seed": size.seed,
        "final_loss": round(final_loss, 5),
        "train_seconds": round(seconds, 1),
        "sha256": hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest(),
    }


def _worker(args):
    # Exceptions cross the process boundary as text: an exception class that cannot be
    # unpickled would otherwise kill the pool's result thread and hang the whole run.
    try:
        return train_one(*args)
    except Exception:  # noqa: BLE001
        import traceback

        return {"error": traceback.format_exc(), "name": args[0].name}


def write_manifest(out_dir: Path, recipe: Recipe, entries: list[dict]) -> Path:
    entries = sorted(entries, key=lambda e: (e["params"], e["seed"]))
    path = out_dir / "manifest.json"
    path.write_text(json.dumps({"recipe": asdict(recipe), "models": entries}, indent=2) + "\n")
    return path


def train_zoo(out_dir: Path, tasks_dir: Path, recipe: Recipe = Recipe(),
              sizes: list[Size] = SIZES, jobs: int = 2) -> list[dict]:
    """Train every size and seed (seed by seed, largest first, `jobs` at a time) and write
    ``manifest.json``. A checkpoint already trained with this recipe is kept, not retrained."""
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout = synth.write_heldout_sets(tasks_dir)
    exclude = synth.read_jsonl_ids(heldout)
    entries, errors, work = [], [], []
    for s in sorted(sizes, key=lambda s: (s.seed, -s.hidden)):
        done = out_dir / s.name / "zoo_entry.json"
        entry = json.loads(done.read_text()) if done.exists() else None
        if entry and entry["steps"] == recipe.steps and entry["batch"] == recipe.batch \
                and entry["lr"] == recipe.lr:
            entries.append(entry)
        else:
            work.append((s, recipe, out_dir, exclude))
    with mp.get_context("spawn").Pool(max(1, jobs)) as pool:
        for entry in pool.imap_unordered(_worker, work, chunksize=1):
            (errors if "error" in entry else entries).append(entry)
    if errors:
        raise RuntimeError("training failed for " + ", ".join(e["name"] for e in errors)
                           + "\n" + "\n".join(e["error"] for e in errors))
    write_manifest(out_dir, recipe, entries)
    return sorted(entries, key=lambda e: (e["params"], e["seed"]))


TASKS_DATA = Path(__file__).resolve().parents[2] / "tasks" / "data"

if __name__ == "__main__":
    train_zoo(ZOO_DIR, TASKS_DATA)
