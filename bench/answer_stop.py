"""Where should a forced answer end? Whole answers against answers cut at a stop string.

Reads a run made WITHOUT answer stops (``--answer-stop ''``) and cuts every answer where a
stop would have ended it. Greedy decoding is causal, so the cut answer is exactly what a run
with the stop generates (tests/test_real_model.py checks this on both engines). Printed per
run: answer tokens, forced answers that ended within the limit, answers that open with
whitespace, how often the extracted answer changes, and exact match, whole against cut. This
is how `cot`'s blank-line stop was chosen (docs/engines.md):

    for t in gsm8k math500; do
      evalharness eval --model smollm2 --task $t --data-file ../shared/data/$t/test.jsonl \\
        --limit 64 --budgets 0,16,64,256 --engine vllm --answer-stop '' --results /tmp/stops
    done
    .venv/bin/python bench/answer_stop.py /tmp/stops --stop '\\n\\n' --stop '\\n'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evalharness.cli import parse_answer_stop
from evalharness.scoring.answers import extract_answer, grade


def cut(text: str, stop: str) -> tuple[str, bool]:
    """The answer up to and including the first `stop`, and whether it was there."""
    at = text.find(stop)
    return (text, False) if at < 0 else (text[: at + len(stop)], True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, help="results folder of runs made without stops")
    ap.add_argument("--stop", action="append", required=True, help="a stop string (\\n escapes)")
    args = ap.parse_args()
    from transformers import AutoTokenizer

    for run in sorted((args.results / "runs").iterdir()):
        man = json.loads((run / "manifest.json").read_text())
        spec = man["spec"]
        if spec["format"].get("answer_stop"):
            print(f"{run.name}: made with answer stops {spec['format']['answer_stop']}; skipped")
            continue
        tok = AutoTokenizer.from_pretrained(man["model_path"])
        atype = spec["task"]["answer_type"]
        rows = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
        forced = [r for r in rows if r["cut"]]
        limit = spec["generation"]["max_answer_tokens"]
        print(f"\n{run.name}: {len(rows)} records, {len(forced)} forced answers, "
              f"<= {limit} answer tokens")
        whole_em = sum(grade(extract_answer(r["answer"], atype), r["reference"], atype)
                       for r in rows)
        whole_tok = sum(len(r["answer_ids"]) for r in rows)
        ended = sum(r["finish_reason"] == "stop" for r in forced)
        print(f"  {'whole':<8} answer tokens {whole_tok:>7,}  forced ended {ended / len(forced):.2f}"
              f"  exact match {whole_em}/{len(rows)}")
        for stop in parse_answer_stop(args.stop) or ():
            toks = em = changed = stopped = 0
            for r in rows:
                text, hit = cut(r["answer"], stop)
                toks += len(tok.encode(text, add_special_tokens=False)) if hit else len(r["answer_ids"])
                pred = extract_answer(text, atype)
                em += grade(pred, r["reference"], atype)
                changed += pred != extract_answer(r["answer"], atype)
                stopped += r["cut"] and (hit or r["finish_reason"] == "stop")
            lead = sum(r["answer"][:1].isspace() for r in rows)
            print(f"  {stop!r:<8} answer tokens {toks:>7,}  forced ended {stopped / len(forced):.2f}"
                  f"  exact match {em}/{len(rows)}  extracted answer changed {changed}"
                  f"  (answers opening with whitespace: {lead})")


if __name__ == "__main__":
    main()
