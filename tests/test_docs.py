"""Every command in README.md and docs/*.md runs as written.

Commands are dry-run, never executed, so no model, network or hub is touched and the file takes
about a second: `evalharness ...` lines go through the real command-line app up to argument
parsing (the subcommand exists, every option exists, every value converts) and stop before the
command's body runs; `make ...` lines run as `make -n` (make prints the recipe and runs
nothing), and the `evalharness` lines of the printed recipe are parsed the same way, so a
variable such as `EXTRA="--limit 16"` is checked where it lands.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import typer
import typer.main

from evalharness.cli import app, parse_budgets, parse_engine_args
from evalharness.engines import ENGINES
from evalharness.formats import FORMATS

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
# words that open a shell construct before the command proper (`for …; do evalharness …`)
SHELL_KEYWORDS = {"then", "do", "else", "time", "!"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# click's UsageError and ClickException, found through typer's BadParameter: newer typer vendors
# its own copy of click, so `click.UsageError` would not catch what the app raises
USAGE_ERROR = typer.BadParameter.__mro__[1]
CLICK_EXCEPTION = USAGE_ERROR.__mro__[1]

# Commands that need what a test machine lacks (GPUs, a model hub, a server or a cluster). They
# are still parsed like every other command, so a typo in them fails here too; they are listed
# so that which documented commands were never run end to end is a reviewed list, not an
# accident. Keys are substrings of the command; every command holding one is off-machine.
NEEDS_GPU_OR_HUB: dict[str, str] = {
    "make preset-": "Makefile presets: hub models on GPUs with vLLM (HF_HUB_OFFLINE=0)",
    "deepseek-ai/": "DeepSeek-R1 distills from the hub, on GPUs with vLLM (20K-token context)",
    "Qwen/": "Qwen models from the hub (on GPUs, or behind a served endpoint)",
    "EleutherAI/pythia-": "Pythia revisions from the hub",
    "--engine openai": "a served model: needs a running OpenAI-compatible server at --base-url",
    "RAY_ADDRESS=": "a multi-node Ray cluster",
}
# model names that are local here: the zoo, the shipped SmolLM2, placeholders for a local path
LOCAL_MODEL_PREFIXES = ("zoo", "smollm2", "path/", "...", "…")


@dataclass(frozen=True)
class Command:
    where: str  # "docs/tasks.md:42": the line the command starts on
    text: str  # the logical line as written (continuations joined)
    argv: tuple[str, ...]  # the command itself: leading variable assignments removed
    env: tuple[str, ...]  # those assignments

    @property
    def kind(self) -> str:
        return "make" if self.argv[0] == "make" else "cli"


def _logical_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(index of the first line, text) with lines ending in a backslash joined to the next."""
    out, buf, start = [], [], 0
    for i, line in enumerate(lines):
        if not buf:
            start = i
        if line.rstrip().endswith("\\"):
            buf.append(line.rstrip()[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(s.strip() for s in buf)))
        buf = []
    if buf:
        out.append((start, " ".join(s.strip() for s in buf)))
    return out


def _segments(text: str) -> list[list[str]]:
    """Simple commands of one shell line: split at ;, &&, ||, | and cut at a redirection;
    comments dropped."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=";&|<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    segs, cur, redirected = [], [], False
    for tok in lex:
        if tok in {";", "&&", "||", "|", "&"}:
            segs.append(cur)
            cur, redirected = [], False
        elif tok[:1] in ("<", ">"):
            redirected = True  # the target of a redirection is no argument
        elif not redirected:
            cur.append(tok)
    segs.append(cur)
    return [s for s in segs if s]


def _is_cli(argv: list[str]) -> bool:
    prog = argv[0]
    if prog == "evalharness" or prog.endswith("/evalharness"):
        return True
    return (len(argv) >= 3 and (prog == "python" or prog.endswith("/python"))
            and argv[1:3] == ["-m", "evalharness"])


def _commands_in_line(where: str, text: str) -> list[Command]:
    out = []
    for seg in _segments(text):
        while seg and seg[0] in SHELL_KEYWORDS:
            seg = seg[1:]
        env = []
        while seg and ENV_ASSIGNMENT.match(seg[0]):
            env.append(seg.pop(0))
        if seg and (seg[0] == "make" or _is_cli(seg)):
            out.append(Command(where, text, tuple(seg), tuple(env)))
    return out


def extract_commands(markdown: str, name: str) -> list[Command]:
    """The commands in a document's shell code blocks (bash, sh, shell, console), in order."""
    commands: list[Command] = []
    lines = markdown.split("\n")
    block: list[str] | None = None
    block_start = 0
    for i, line in enumerate(lines):
        fence = re.match(r"^\s*```+\s*([\w-]*)", line)
        if fence and block is None:
            block = [] if fence.group(1).lower() in SHELL_LANGS else None
            if block is None:
                block = ["\0skip"]  # a block in another language: skipped to its end
            block_start = i + 1
            continue
        if fence and block is not None:
            if block[:1] != ["\0skip"]:
                for offset, text in _logical_lines(block):
                    stripped = text.strip()
                    if stripped.startswith("$ "):  # a console prompt
                        stripped = stripped[2:]
                    where = f"{name}:{block_start + offset + 1}"
                    commands += _commands_in_line(where, stripped)
            block = None
            continue
        if block is not None:
            block.append(line)
    return commands


def _all_commands() -> list[Command]:
    out = []
    for path in DOC_FILES:
        out += extract_commands(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return out


COMMANDS = _all_commands()


@cache
def _root_command():
    return typer.main.get_command(app)


def check_cli(args: list[str]):
    """Parse `evalharness ARGS` with the real app, down to the leaf subcommand, without running
    it; raises click's UsageError (unknown subcommand or option, a value that does not
    convert, a value our own parsers refuse)."""
    cmd, ctx, name = _root_command(), None, "evalharness"
    while True:
        ctx = cmd.make_context(name, list(args), parent=ctx)
        if not hasattr(cmd, "resolve_command"):  # a leaf command, not a group
            break
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            raise USAGE_ERROR(f"'{name}' needs a subcommand", ctx)
        name, cmd, args = cmd.resolve_command(ctx, rest)
    if ctx.info_name == "eval":
        # values typed as plain strings that the command parses itself: check them the same way
        p = ctx.params
        if p["budgets"] is not None:
            parse_budgets(p["budgets"])
        parse_engine_args(p["engine_arg"])
        for option, value, known in (("--engine", p["engine"], {"auto", *ENGINES}),
                                     ("--format", p["fmt"], {"auto", *FORMATS}),
                                     ("--mode", p["mode"], {"truncate", "extend"}),
                                     ("--sweep", p["sweep"], {"one-pass", "independent"})):
            if value not in known:
                raise typer.BadParameter(f"{value!r} is not one of {sorted(known)}",
                                         param_hint=option)
    return ctx


def check_make(args: list[str]) -> str:
    """`make -n ARGS` in the repository root must succeed; the evalharness commands of the
    printed recipe must parse. Returns make's output."""
    env = {**os.environ, "MAKEFLAGS": ""}
    run = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=30, env=env)
    if run.returncode != 0:
        raise AssertionError(f"make -n {' '.join(args)} failed: {run.stderr.strip()}")
    for _, text in _logical_lines(run.stdout.splitlines()):
        for seg in _recipe_commands(text.strip()):
            while seg and ENV_ASSIGNMENT.match(seg[0]):
                seg = seg[1:]
            if seg and _is_cli(seg):
                check_cli(_cli_args(tuple(seg)))
    return run.stdout


def _bracket_test(tokens: list[str]) -> bool | None:
    """The value of `[ -n S ]`, `[ -z S ]`, `[ A = B ]` or `[ A != B ]`; None for any other test."""
    if len(tokens) < 3 or tokens[0] != "[" or tokens[-1] != "]":
        return None
    inner = tokens[1:-1]
    if len(inner) == 2 and inner[0] in ("-n", "-z"):
        return (inner[1] != "") == (inner[0] == "-n")
    if len(inner) == 3 and inner[1] in ("=", "==", "!="):
        return (inner[0] == inner[2]) == (inner[1] != "!=")
    return None


def _recipe_commands(text: str) -> list[list[str]]:
    """The simple commands of one printed recipe line that would run. Make prints a recipe's
    `if [ … ]` with the variables filled in, and a branch that would not run can hold a command
    that does not parse on purpose (an empty `--task` where the step is switched off), so the
    tests are evaluated; a branch behind any other test is left out."""
    conds: list[bool | None] = []  # one per open `if`
    out = []
    for seg in _segments(text):
        word = seg[0]
        if word == "if":
            conds.append(_bracket_test(seg[1:]))
            continue
        if word == "elif" and conds:
            conds[-1] = None
            continue
        if word == "fi":
            conds = conds[:-1]
            continue
        if word == "else" and conds:
            conds[-1] = None if conds[-1] is None else not conds[-1]
            seg = seg[1:]
        if seg and seg[0] == "then":
            seg = seg[1:]
        if seg and all(c is True for c in conds):
            out.append(seg)
    return out


def _cli_args(argv: tuple[str, ...]) -> list[str]:
    return list(argv[3:] if argv[1:3] == ("-m", "evalharness") else argv[1:])


def check(command: Command) -> None:
    if command.kind == "make":
        check_make(list(command.argv[1:]))
    else:
        check_cli(_cli_args(command.argv))


def off_machine_reasons(command: Command) -> list[str]:
    return [why for key, why in NEEDS_GPU_OR_HUB.items() if key in command.text]


def _hub_models(command: Command) -> list[str]:
    """Model names in the command that look like hub ids (org/name), not local checkpoints."""
    names = []
    argv = list(command.argv)
    for i, tok in enumerate(argv):
        if tok in ("--model", "-m") and i + 1 < len(argv):
            names += argv[i + 1].split(",")
        elif tok.startswith("--model="):
            names += tok.split("=", 1)[1].split(",")
        elif tok.startswith("MODEL="):
            names += tok.split("=", 1)[1].split(",")
    return [n for n in names if "/" in n and not n.startswith(LOCAL_MODEL_PREFIXES)
            and not n.endswith(".gguf")]


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_every_documented_command_parses_as_written(command: Command):
    if command.kind == "make" and shutil.which("make") is None:
        pytest.skip("make is not installed")
    check(command)


def test_the_docs_hold_commands_of_every_kind():
    # an extractor that silently found nothing would pass every command
    kinds = {c.kind for c in COMMANDS}
    assert kinds == {"cli", "make"}, kinds
    where = {c.where.split(":")[0] for c in COMMANDS}
    assert "README.md" in where and len(COMMANDS) >= 40, (len(COMMANDS), sorted(where))


def test_commands_needing_a_gpu_or_the_hub_are_listed_with_a_reason(capsys):
    off = [(c, off_machine_reasons(c)) for c in COMMANDS if off_machine_reasons(c)]
    with capsys.disabled():
        print(f"\n{len(off)} documented commands are parsed only (they need a GPU, the hub, a "
              "server or a cluster):")
        for c, why in off:
            print(f"  {c.where}: {' '.join(c.argv)[:100]}  -- {'; '.join(why)}")
    unused = [k for k in NEEDS_GPU_OR_HUB if not any(k in c.text for c in COMMANDS)]
    assert not unused, f"entries that match no documented command (remove them): {unused}"
    unlisted = [(c.where, _hub_models(c)) for c in COMMANDS
                if _hub_models(c) and not off_machine_reasons(c)]
    assert not unlisted, f"commands with hub models missing from NEEDS_GPU_OR_HUB: {unlisted}"


BROKEN = {
    "unknown option": "evalharness eval --model zoo --no-such-option 3",
    "unknown subcommand": "evalharness evaluate --model zoo",
    "unknown nested subcommand": "evalharness zoo fit",
    "value that does not convert": "evalharness eval --model zoo --n two",
    "value out of range": "evalharness eval --model zoo --top-p 1.5",
    "budgets that do not parse": "evalharness eval --model zoo --budgets 0,8,…,128",
    "unknown engine": "evalharness eval --engine vlm",
    "placeholder left as an argument": "evalharness eval ... --results /elsewhere/results",
    "unknown make target": "make no-such-target",
    "continued line with a bad option": "evalharness eval --model zoo \\\n  --task add5 --budget 16",
    "behind a variable and a comment": "HF_HUB_OFFLINE=0 evalharness export --fromat tidy  # x",
    "through a make variable": 'make eval EXTRA="--no-such-option"',
}


@pytest.mark.parametrize("line", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_command_in_a_doc_fails_the_check(line: str):
    if line.startswith("make") and shutil.which("make") is None:
        pytest.skip("make is not installed")
    doc = f"Text.\n\n```bash\n{line}\n```\n"
    commands = extract_commands(doc, "broken.md")
    assert len(commands) == 1, commands
    with pytest.raises((CLICK_EXCEPTION, AssertionError)):
        check(commands[0])


def test_extraction_joins_continued_lines_and_skips_comments_output_and_other_blocks():
    doc = "\n".join([
        "```bash",
        "# a comment: evalharness eval --bogus",
        "evalharness eval --model zoo/arith-h128-s0 \\",
        "  --task add5 --budgets 16,32   # the rest of the line is a comment",
        "# -> output: evalharness summary",
        "cd /tmp && evalharness summary --results /tmp/x",
        "for t in a b; do",
        "  evalharness eval --task $t",
        "done",
        "```",
        "```python",
        "evalharness = 1",
        "```",
        "```",
        "evalharness eval --not-a-shell-block",
        "```",
        "```console",
        "$ make test",
        "warning: an output line",
        "```",
    ])
    got = [(c.where, c.argv) for c in extract_commands(doc, "d.md")]
    assert got == [
        ("d.md:3", ("evalharness", "eval", "--model", "zoo/arith-h128-s0", "--task", "add5",
                    "--budgets", "16,32")),
        ("d.md:6", ("evalharness", "summary", "--results", "/tmp/x")),
        ("d.md:8", ("evalharness", "eval", "--task", "$t")),
        ("d.md:18", ("make", "test")),
    ]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_docs_reach_a_file_and_heading():
    broken = []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", dest.read_text(encoding="utf-8"), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_stays_short():
    # the README is the way in; the details live in docs/
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 300, lines
