"""Reasoning formats: how a prompt opens thinking, what ends it, and how an answer is forced.

Budget forcing needs three strings per model family: the think-start text appended to the
prompt, the think-end marker (cut thinking here / detect a natural end) and the answer cue put
after a forced end. Chat models get their prompt through the tokenizer's own chat template.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from evalharness.types import Problem


@dataclass(frozen=True)
class ReasoningFormat:
    name: str
    think_start: str  # appended after the (templated) prompt to open thinking
    think_end: str  # ends thinking: forced when the budget is reached
    answer_cue: str  # appended after a *forced* end so the model answers at once
    chat_template: bool  # render the prompt with the tokenizer's chat template
    extension: str = "Wait"  # s1-style: replaces a natural end to make the model think longer
    description: str = ""
    # an answer ends at the first of these strings (kept in the answer), as at a stop token
    answer_stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:  # a spec read back from JSON holds a list
        object.__setattr__(self, "answer_stop", tuple(self.answer_stop))


# After "Therefore, the final answer is" an instruct model states its answer in one paragraph
# and then explains on, paragraph after paragraph ("To solve this problem, we ...", "Step 1:
# ..."), until the answer budget runs out. So `cot` answers end at the first blank line.
# Measured on SmolLM2-135M-Instruct, 64 GSM8K and 64 MATH-500 problems, budgets 0/16/64/256,
# 256 answer tokens (docs/engines.md): exact match unchanged (GSM8K 1/256 both ways,
# MATH-500 7/256 both ways; the extracted answer differs in 101 and 73 records: the whole text
# gave a number of the explanation), answer tokens 26.6K -> 6.9K and 27.8K -> 4.6K, forced
# answers that end within 256 tokens 79% -> 96% and 68% -> 95%. A single newline would cut
# display maths (5 MATH-500 answers open with one, "\n\\begin{align*}...") and multi-line
# answers. `--answer-stop` overrides.
ANSWER_PARAGRAPH_END = "\n\n"

FORMATS: dict[str, ReasoningFormat] = {
    f.name: f
    for f in [
        ReasoningFormat(
            "zoo", "<think>", "</think>", "", chat_template=False, extension="",
            description="the built-in zoo: raw prompt, <think> scratchpad </think> answer",
        ),
        ReasoningFormat(
            "think", "<think>\n", "</think>", "\n\nFinal Answer: ", chat_template=True,
            description="<think>…</think> reasoning models (DeepSeek-R1 distills, Qwen3, QwQ)",
        ),
        ReasoningFormat(
            "s1", "<|im_start|>think\n", "<|im_start|>answer", "\nFinal Answer: ", chat_template=True,
            description="s1-style Qwen chat: <|im_start|>think … <|im_start|>answer",
        ),
        ReasoningFormat(
            "cot", "", "Therefore, the final answer is", " ", chat_template=True,
            description="plain instruct models: the chain of thought before the answer cue is the thinking",
            answer_stop=(ANSWER_PARAGRAPH_END,),
        ),
        ReasoningFormat(
            "cot-raw", "", "Therefore, the final answer is", " ", chat_template=False,
            description="base models without a chat template: raw prompt, cue-ended chain of thought",
        ),
    ]
}


# Answer tokens a forced answer gets by default in a format, where it was measured on a real
# model: after "Therefore, the final answer is" an instruct model states the answer and then
# often explains on. SmolLM2-135M-Instruct, 32 GSM8K and 32 MATH-500 problems, budgets
# 0/16/64/256, 1,024 answer tokens (docs/engines.md): the forced answers that end at all
# end within 256 tokens; the rest loop to any limit. So 256 ends what can end, at a quarter
# of the cost of 1,024. The run's default is the smaller of this and the task's own
# `max_answer_tokens`; formats without a measurement use the task's (`cot-raw` too: without
# its chat template SmolLM2 ends at once, so an instruct model cannot measure it, and no base
# model ships). The resolved number is part of the run's generation spec (its identity).
# (Measured without the blank-line stop; with it, 96% and 95% of forced answers end within 256.)
FORCED_ANSWER_TOKENS: dict[str, int] = {"cot": 256}


def default_answer_tokens(fmt: ReasoningFormat, task_default: int) -> int:
    """`--max-answer-tokens` when the user gives none: the task's, capped by the format's."""
    cap = FORCED_ANSWER_TOKENS.get(fmt.name)
    return task_default if cap is None else min(task_default, cap)


class FormatError(ValueError):
    pass


def get_format(name: str) -> ReasoningFormat:
    if name not in FORMATS:
        raise FormatError(f"unknown reasoning format {name!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[name]


def detect_format(tokenizer) -> ReasoningFormat:
    """Pick a format from the tokenizer: its vocabulary and chat template say what it speaks."""
    vocab = tokenizer.get_vocab()
    template = getattr(tokenizer, "chat_template", None) or ""
    if "<think>" in vocab and "</think>" in vocab and not template:
        return FORMATS["zoo"]
    if "</think>" in vocab or "</think>" in template:
        return FORMATS["think"]
    if "<|im_start|>" in vocab and "think" in template and "answer" in template:
        return FORMATS["s1"]
    return FORMATS["cot"] if template else FORMATS["cot-raw"]


def with_overrides(fmt: ReasoningFormat, **kw: str | tuple[str, ...] | None) -> ReasoningFormat:
    """CLI overrides (--think-end, --answer-cue, --extension, --answer-stop …); None: keep."""
    return replace(fmt, **{k: v for k, v in kw.items() if v is not None})


def render_prompt(
    problem: Problem,
    fmt: ReasoningFormat,
    tokenizer,
    *,
    system_prompt: str | None = None,
    few_shot: tuple[tuple[str, str], ...] = (),
) -> str:
    """The text the model continues: (templated) prompt followed by the think-start text."""
    if fmt.chat_template and getattr(tokenizer, "chat_template", None):
        messages: list[dict[str, str]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        for q, a in few_shot:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": problem.prompt})
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        shots = "".join(f"{q}{a}\n\n" for q, a in few_shot)
        text = (system_prompt + "\n\n" if system_prompt else "") + shots + problem.prompt
    # R1-distill templates already open thinking; do not open it twice.
    if fmt.think_start and not text.rstrip().endswith(fmt.think_start.strip()):
        text += fmt.think_start
    return text
