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

import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import signal
import threading
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
    lr: float = 3e-3  # at width `lr_ref_width` and below
    mul_share: float = 0.15
    cut_share: float = 0.10  # examples whose thinking is cut and the answer forced
    max_len: int = 512
    # Wider models take effectively larger steps at one LR and settle their copy lookups early
    # (v2: seeds of h >= 40 each miss a different lookup). None keeps one LR for every width.
    lr_ref_width: int | None = None
    # Hold the LR after warm-up until this share of training, then cosine to 0 (0 = cosine
    # from the end of warm-up, as in v2).
    decay_from: float = 0.0
    # Batches drawn from a pool sorted by length: padding was 42% of v2's compute.
    length_grouped: bool = False
    pool_batches: int = 16
    # Shares of training at which a checkpoint is kept (training compute as an axis).
    keep: tuple[float, ...] = (1.0,)

    def lr_for(self, hidden: int) -> float:
        if self.lr_ref_width is None:
            return self.lr
        return self.lr * min(1.0, self.lr_ref_width / hidden)

    def lr_factor(self, step: int) -> float:
        """Multiplier of the peak LR at `step`: linear warm-up, hold, then cosine to 0."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        start = max(self.warmup, int(self.decay_from * self.steps))
        if step < start:
            return 1.0
        progress = (step - start) / max(1, self.steps - start)
        return 0.5 * (1 + math.cos(math.pi * progress))

    def keep_steps(self) -> list[int]:
        """Steps (counted as steps done) after which a checkpoint is saved; the last is final."""
        return sorted({max(1, round(f * self.steps)) for f in self.keep} | {self.steps})


V2 = Recipe()
# Candidate v3: LR scaled down with width, 3x the steps with the LR held to 80%,
# length-grouped batches, and five log-spaced checkpoints per (size, seed).
V3 = Recipe(steps=3000, warmup=60, lr_ref_width=32, decay_from=0.8, length_grouped=True,
            keep=(1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0))
# v3 attention: 8 heads of 32. With 4 heads two seeds (h48-s1, h64-s1) still missed one copy
# lookup each (k5y 83-89% error); with 8 both trained clean (docs/zoo.md, "Pilots").
DEFAULT_HEADS = {"v2": HEADS, "v3": 8}
# With a state folder, the optimiser state is also saved every this many steps, so an
# interruption loses minutes, not the (up to half a training) stretch between kept checkpoints.
STATE_EVERY = 250


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


def _row_groups(recipe: Recipe, tok, exclude: set[str], seed: int):
    """Endless lists of `batch` encoded examples. Length-grouped: a pool of `pool_batches`
    batches is sorted by length, cut into batches, and those are served in a seeded random
    order, so a batch pads little while every length still comes at every stage of training."""
    stream = synth.training_stream(seed, exclude, recipe.mul_share)
    rng = np.random.default_rng(seed + 1)
    order = np.random.default_rng(seed + 2)
    while True:
        if not recipe.length_grouped:
            yield [encode_example(next(stream), tok, rng, recipe.cut_share)
                   for _ in range(recipe.batch)]
            continue
        pool = [encode_example(next(stream), tok, rng, recipe.cut_share)
                for _ in range(recipe.batch * recipe.pool_batches)]
        pool.sort(key=lambda r: len(r[0]))
        groups = [pool[i: i + recipe.batch] for i in range(0, len(pool), recipe.batch)]
        for k in order.permutation(len(groups)):
            yield groups[int(k)]


def batches(recipe: Recipe, tok, exclude: set[str], seed: int = 0):
    """Endless padded batches; `seed` sets the stream of problems and which thinking is cut."""
    for rows in _row_groups(recipe, tok, exclude, seed):
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        labels = torch.full((len(rows), width), -100)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, m) in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            attn[i, : len(r)] = 1
            labels[i, : len(r)] = torch.tensor([t if k else -100 for t, k in zip(r, m, strict=True)])
        yield ids, attn, labels


def checkpoint_dir(out_dir: Path, size: Size, step: int, recipe: Recipe) -> Path:
    """The final checkpoint is `<name>/`; an intermediate one `<name>/steps/step<k>/`."""
    base = out_dir / size.name
    return base if step == recipe.steps else base / "steps" / f"step{step:05d}"


def train_one(size: Size, recipe: Recipe, out_dir: Path, exclude: set[str],
              state_dir: Path | None = None) -> dict:
    """Train one (size, seed), saving a checkpoint (and its manifest entry) at every kept step.

    With `state_dir`, the optimiser and schedule are saved beside each kept checkpoint, so an
    interrupted training resumes from the last one (the data stream is replayed to that step).
    """
    from evalharness.zoo.health import health, heldout_loss, heldout_loss_set

    torch.set_num_threads(1)  # two sizes train side by side, one core each
    torch.manual_seed(size.seed)
    tok = build_tokenizer()
    model = LlamaForCausalLM(model_config(size, len(tok), tok))
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr_for(size.hidden), betas=(0.9, 0.98),
                            weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, recipe.lr_factor)
    state_path = state_dir / f"{size.name}.pt" if state_dir else None
    start, tokens, seconds, entries = 0, 0, 0.0, []
    if state_path and state_path.exists():
        state = torch.load(state_path, weights_only=False)
        # a state of another recipe or attention shape (an older pilot) is not resumed from
        if state["recipe"] == asdict(recipe) and _state_heads(state) == size.heads:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            start, tokens, seconds = state["step"], state["tokens"], state["seconds"]
            entries = state["entries"]
            torch.set_rng_state(state["torch_rng"])
            print(f"[{size.name}] resuming at step {start}", flush=True)
    heldout = heldout_loss_set()
    keep = set(recipe.keep_steps())
    stream = batches(recipe, tok, exclude, size.seed)
    for _ in range(start):  # replay the stream to where the saved state stopped
        next(stream)
    t0 = time.time() - seconds
    model.train()
    for step in range(start, recipe.steps):
        ids, attn, labels = next(stream)
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens += int(attn.sum())
        done = step + 1
        if step % 100 == 0 or done == recipe.steps:
            print(f"[{size.name}] step {step:4d} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                  flush=True)
        if done not in keep:
            if state_path and done % STATE_EVERY == 0:
                _save_state(state_path, recipe, size, model, opt, sched, done, tokens, t0, entries)
            continue
        model.eval()
        path = checkpoint_dir(out_dir, size, done, recipe)
        model.save_pretrained(path, safe_serialization=True)
        tok.save_pretrained(path)
        entry = manifest_entry(size, recipe, path, tokens, loss.item(), time.time() - t0,
                               step=done, out_dir=out_dir)
        entry["heldout_loss"] = round(heldout_loss(model, tok, heldout), 5)
        if done == recipe.steps:
            entry["health"] = health(model, tok)
            entry["checkpoints"] = entries
        else:
            entries.append(entry)
        # each checkpoint carries its own entry, so an interrupted training resumes where it
        # stopped and a finished one is never retrained
        (path / "zoo_entry.json").write_text(json.dumps(entry, indent=2) + "\n")
        model.train()
        if state_path and done < recipe.steps:
            _save_state(state_path, recipe, size, model, opt, sched, done, tokens, t0, entries)
    if state_path and state_path.exists():
        state_path.unlink()
    return entry


def _state_heads(state: dict) -> int:
    """Attention heads of a saved state; states written before the field existed carry it only
    in their weights' shape (q_proj has heads x HEAD_DIM rows)."""
    if "heads" in state:
        return state["heads"]
    return state["model"]["model.layers.0.self_attn.q_proj.weight"].shape[0] // HEAD_DIM


def _save_state(path: Path, recipe: Recipe, size: Size, model, opt, sched, done: int,
                tokens: int, t0: float, entries: list[dict]) -> None:
    # written then renamed, so a kill during the write leaves the previous state usable
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"recipe": asdict(recipe), "heads": size.heads, "model": model.state_dict(),
                "opt": opt.state_dict(), "sched": sched.state_dict(), "step": done, "tokens": tokens,
                "seconds": time.time() - t0, "entries": entries,
                "torch_rng": torch.get_rng_state()}, tmp)
    tmp.replace(path)


def manifest_entry(size: Size, recipe: Recipe, path: Path, tokens: int, final_loss: float,
                   seconds: float, step: int | None = None, out_dir: Path | None = None) -> dict:
    """What the zoo manifest says of one trained checkpoint (read back from disk)."""
    sizes = tensor_sizes(path)
    n_params = sum(sizes.values())
    n_embed = sizes["model.embed_tokens.weight"]
    step = recipe.steps if step is None else step
    final = step == recipe.steps
    return {
        "name": f"zoo/{size.name}" + ("" if final else f"@step{step}"),
        "path": size.name if out_dir is None else str(path.relative_to(out_dir)),
        "step": step,
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
        "lr": recipe.lr_for(size.hidden),
        "tokens": tokens,
        "train_flops": 6 * n_params * tokens,
        "seed": size.seed,
        "final_loss": round(final_loss, 5),
        "train_seconds": round(seconds, 1),
        "sha256": hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest(),
        "recipe": json.loads(json.dumps(asdict(recipe))),
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


@contextlib.contextmanager
def _terminate_stops_workers():
    """A SIGTERM to the trainer (kill, a job scheduler) unwinds like Ctrl-C, so the pool's exit
    terminates its workers: by default they would be orphaned and keep training, writing
    checkpoints and states beside the next run's."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train_zoo(out_dir: Path, tasks_dir: Path, recipe: Recipe = V2,
              sizes: list[Size] = SIZES, jobs: int = 2, state_dir: Path | None = None) -> list[dict]:
    """Train every size and seed (seed by seed, largest first, `jobs` at a time) and write
    ``manifest.json``. A checkpoint already trained with this recipe is kept, not retrained;
    with `state_dir` an interrupted one resumes from its last kept checkpoint."""
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout = synth.write_heldout_sets(tasks_dir)
    exclude = synth.read_jsonl_ids(heldout)
    entries, errors, work = [], [], []
    for s in sorted(sizes, key=lambda s: (s.seed, -s.hidden)):
        done = out_dir / s.name / "zoo_entry.json"
        entry = json.loads(done.read_text()) if done.exists() else None
        same = entry and entry.get("heads", HEADS) == s.heads
        if same and entry.get("recipe", asdict(V2)) == json.loads(json.dumps(asdict(recipe))):
            entries.append(entry)
        else:
            work.append((s, recipe, out_dir, exclude, state_dir))
    with _terminate_stops_workers(), mp.get_context("spawn").Pool(max(1, jobs)) as pool:
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
