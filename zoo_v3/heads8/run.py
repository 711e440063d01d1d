"""Pilot: the v3 recipe with 8 heads (of 32) instead of 4, on the two flagged seeds."""
import sys, json, time
from pathlib import Path
from evalharness import synth
from evalharness.zoo.train import Size, V3, train_one, TASKS_DATA
hidden, seed = int(sys.argv[1]), int(sys.argv[2])
out = Path("/work/pilot_heads/out")
heldout = synth.write_heldout_sets(TASKS_DATA)
exclude = synth.read_jsonl_ids(heldout)
t = time.time()
entry = train_one(Size(hidden, seed, heads=8), V3, out, exclude, state_dir=Path("/work/pilot_heads/state"))
print(json.dumps({k: v for k, v in entry.items() if k not in ("health",)}, default=str)[:2000])
print("health", json.dumps(entry.get("health"), default=str)[:3000])
print("wall", time.time() - t)
