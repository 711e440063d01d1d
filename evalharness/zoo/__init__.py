"""The built-in model zoo: tiny Llama checkpoints shipped as package data, addressed by name.

``zoo`` means the whole family (every size and seed, final checkpoints), ``zoo/arith-h128-s0``
one member, ``zoo/seed0`` one seed of every size. Training compute is a second axis: a zoo
trained with kept intermediate checkpoints addresses them as ``zoo/arith-h64-s1@step750``, and
``zoo@all`` (``zoo/seed0@all``) adds every kept checkpoint to the finals (``zoo@final`` = ``zoo``).
A hub id gets the same axis through its
revisions: ``EleutherAI/pythia-160m@step1000,@step2000`` is one model per revision (an item
that is only ``@revision`` repeats the previous hub id). Any other name passes through
unchanged (a hub id or a local checkpoint directory), except GGUF files: a ``.gguf`` path, a
directory holding one, or a shipped name (``smollm2``) resolves to a converted checkpoint in the
cache (`evalharness.models`), with the GGUF file and its sha256 on the reference.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

ZOO_DIR = Path(__file__).parent / "checkpoints"
FAMILY = "zoo/arith"


@dataclass(frozen=True)
class ModelRef:
    name: str  # what the user typed / the display name ("zoo/arith-h64", "Qwen/Qwen3-0.6B")
    path: str  # what from_pretrained / vLLM load
    params: int | None = None
    family: str | None = None
    sha256: str | None = None
    train_tokens: int | None = None  # tokens seen in training (zoo manifest; --train-tokens)
    train_flops: float | None = None  # 6 N D where known
    gguf: str | None = None  # the GGUF file `path` was converted from (the manifest records it)
    gguf_sha256: str | None = None
    size: str | None = None  # seeded families: the name shared by every seed of one size
    seed: int | None = None  # ... and this checkpoint's training seed
    step: int | None = None  # zoo: the training step of this checkpoint (None: not recorded)
    revision: str | None = None  # hub id: the revision named with `id@revision`


def tensor_sizes(checkpoint: str | Path) -> dict[str, int]:
    """Element count of every tensor in a local checkpoint's safetensors files (headers only)."""
    from safetensors import safe_open

    sizes: dict[str, int] = {}
    for f in sorted(Path(checkpoint).glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            sizes.update({k: math.prod(st.get_slice(k).get_shape()) for k in st.keys()})  # noqa: SIM118
    return sizes


def zoo_manifest() -> dict:
    path = ZOO_DIR / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no zoo checkpoints in {ZOO_DIR}; train them with `make zoo`")
    return json.loads(path.read_text())


def _ref(m: dict, final: bool) -> ModelRef:
    # An intermediate checkpoint is its own family and size (`zoo/arith@step750`): seeds of a
    # size are replicates only at equal training, never pooled with the final checkpoints.
    tag = "" if final else f"@step{m['step']}"
    return ModelRef(m["name"], str(ZOO_DIR / m["path"]), m["params"], FAMILY + tag, m["sha256"],
                    m.get("tokens"), m.get("train_flops"),
                    size=f"{FAMILY}-{m['size']}{tag}" if "size" in m else None,
                    seed=m.get("seed"), step=m.get("step"))


def _stepped_entry(folder: str) -> bool:
    """Whether `folder` is a checkpoint of a training that records its steps (v3 on): a folder
    of the package zoo (no step recorded) stays a plain local model, as it always was."""
    path = Path(folder) / "zoo_entry.json"
    try:
        return path.is_file() and "step" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def checkpoint_ref(folder: str) -> ModelRef:
    """A zoo-trained checkpoint folder given by path (``zoo_v3/heads8/arith-h64-s1`` or one of
    its ``steps/stepNNNNN``): its own ``zoo_entry.json`` gives its parameters, training tokens
    and FLOPs, size, seed and step, so the training axis works before (or without) a manifest.
    Its family is named after the training folder (``zoo/arith:heads8``): checkpoints of
    another recipe are never pooled with the package zoo's sizes of the same name."""
    entry = json.loads((Path(folder) / "zoo_entry.json").read_text())
    root = Path(folder).resolve()
    root = root.parents[2] if root.parent.name == "steps" else root.parent
    final = entry.get("step") == entry.get("steps") or "checkpoints" in entry
    tag = "" if final else f"@step{entry['step']}"
    family = f"{FAMILY}:{root.name}"
    return ModelRef(folder, folder, entry.get("params"), family + tag, entry.get("sha256"),
                    entry.get("tokens"), entry.get("train_flops"),
                    size=f"{family}-{entry['size']}{tag}" if "size" in entry else None,
                    seed=entry.get("seed"), step=entry.get("step"))


def zoo_models(which: str = "final") -> list[ModelRef]:
    """Every zoo checkpoint, by parameters then seed: ``final`` (one per size and seed) or
    ``all`` (each one's kept intermediate checkpoints too, by step, then the final)."""
    if which not in ("final", "all"):
        raise ValueError(f"zoo@{which}: use zoo@final or zoo@all")
    out = []
    for m in zoo_manifest()["models"]:
        if which == "all":
            out += [_ref(c, final=False) for c in m.get("checkpoints", [])]
        out.append(_ref(m, final=True))
    return out


def _split_at(name: str) -> tuple[str, str | None]:
    base, _, at = name.partition("@")
    return base, (at or None)


def _hub_revision(name: str) -> tuple[str, str | None]:
    """``org/model@rev`` -> ("org/model", "rev"); anything that exists on disk, or has no
    ``@`` after an ``org/model`` id, is not a revision."""
    base, at, rev = name.rpartition("@")
    if not at or not rev or Path(name).exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", base):
        return name, None
    return base, rev


def _step_of(revision: str) -> int | None:
    """Training step from a revision named like Pythia's (``step1000``); None otherwise."""
    m = re.fullmatch(r"step(\d+)", revision)
    return int(m.group(1)) if m else None


def resolve_models(spec: str) -> list[ModelRef]:
    """Comma-separated names -> model references; ``zoo`` expands to every zoo size."""
    out: list[ModelRef] = []
    for name in (s.strip() for s in spec.split(",") if s.strip()):
        base, at = _split_at(name) if name.startswith("zoo") else (name, None)
        if base == "zoo" and at in (None, "final", "all"):
            out += zoo_models(at or "final")
        elif (m := re.fullmatch(r"zoo/seed(\d+)", base)) and at in (None, "final", "all"):
            # one seed of every size
            picked = [r for r in zoo_models(at or "final") if r.seed == int(m.group(1))]
            if not picked:
                raise ValueError(f"no zoo checkpoints with seed {m.group(1)}")
            out += picked
        elif base.startswith("zoo/"):
            every = zoo_models("all")
            want = base if at in (None, "final") else name
            found = [r for r in every if r.name == want]
            if not found:
                steps = sorted(r.step for r in every if r.name.partition("@")[0] == base
                               and r.step is not None)
                if steps:
                    raise ValueError(f"zoo model {base!r} has no checkpoint {at!r}; kept: "
                                     + ", ".join(f"@step{s}" for s in steps[:-1]) + " and the"
                                     f" final (step {steps[-1]})")
                names = ", ".join(r.name for r in zoo_models())
                raise ValueError(f"unknown zoo model {name!r}; the zoo has: zoo, {names}")
            out += found
        elif base == "zoo" or base.startswith("zoo/seed"):
            raise ValueError(f"{name!r}: after {base}@ use final or all")
        else:
            from evalharness.models import resolve_local

            if name.startswith("@"):  # another revision of the previous hub id
                if not out or out[-1].revision is None:
                    raise ValueError(f"{name!r} repeats the previous model at another revision, "
                                     "but no hub id@revision comes before it")
                name = out[-1].name.rpartition("@")[0] + name
            hub, revision = _hub_revision(name)
            if revision is not None:
                out.append(ModelRef(name, hub, revision=revision, step=_step_of(revision)))
                continue
            if _stepped_entry(name):
                out.append(checkpoint_ref(name))
                continue
            path, gguf, sha = resolve_local(name)
            out.append(ModelRef(name, path, gguf=gguf, gguf_sha256=sha))
    if not out:
        raise ValueError("no model given: pass --model NAME[,NAME...] (e.g. zoo)")
    return out
