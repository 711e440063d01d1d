"""Where an answer sits in a model's text: the last ``\\boxed{}``, the span after an "answer is"
cue, the last ``#### X``, and the tidying of such a span. Type-blind and linear in the text."""

from __future__ import annotations

import re
from collections import deque

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# "\boxed 5" (no braces) is legal LaTeX and some models emit it.
_BOXED_BARE = re.compile(r"\\boxed\s+([^\s{$]+)")
_BRACES = re.compile(r"[{}]")
_ANSWER_CUE = re.compile(r"answer\s*(?:is|:)\s*:?", re.IGNORECASE)
_WS = re.compile(r"\s*")
# A sentence-ending period: followed by whitespace or the end of the text (not the one in "3.5").
_PERIOD_END = re.compile(r"\.(?=\s|\Z)")


def _last(matches):
    """The last item of an iterator, or None (the others are not kept)."""
    tail = deque(matches, maxlen=1)
    return tail[0] if tail else None


def _balanced(text: str, start: int) -> str | None:
    """Content from `start` up to the brace that closes the one just before it, or None."""
    depth = 1
    for m in _BRACES.finditer(text, start):
        if m.group() == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return text[start : m.start()]
    return None  # truncated generation: no closing brace


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (nested braces allowed), else None.

    For ``\\boxed{\\boxed{5}}`` the inner box is the last one, so the result is ``5``.
    One pass over the braces (a stack), so 10^4 unclosed boxes cost as much as one: matching
    each box on its own rescans the rest of the text per box, quadratic in the box count.
    """
    boxes = [m.end() - 1 for m in _BOXED.finditer(text)]  # index of each box's "{"
    if boxes:
        is_box, closes, stack = set(boxes), {}, []
        for m in _BRACES.finditer(text, boxes[0]):
            if m.group() == "{":
                stack.append(m.start())
            elif stack:  # a "}" with nothing open is stray: it closes nothing
                opened = stack.pop()
                if opened in is_box:
                    closes[opened] = m.start()
        # A brace is closed by the first "}" at which the depth counted from it returns to 0,
        # whatever came before it: exactly what the stack pairs it with.
        for b in reversed(boxes):
            if b in closes:
                return text[b + 1 : closes[b]]
    bare = _last(_BOXED_BARE.finditer(text))
    return bare.group(1) if bare else None


def _clean_span(span: str) -> str:
    """Strip what surrounds an answer in prose: math delimiters, bold, final punctuation."""
    s = span.strip()
    for _ in range(3):  # a few layers, e.g. "**$5$**."
        before = s
        s = s.strip().rstrip(".;,!").strip().strip("*").strip()  # "**Answer:** 12"
        if s.startswith("$$") and s.endswith("$$") and len(s) >= 4:
            s = s[2:-2]
        elif s.startswith("$") and s.endswith("$") and len(s) >= 2 and s.count("$") == 2:
            s = s[1:-1]
        if s.startswith("\\(") and s.endswith("\\)"):
            s = s[2:-2]
        if s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2]
        inner = last_boxed(s) if "\\boxed" in s else None
        if inner is not None:
            s = inner
        if s == before:
            break
    return s.strip()


def _sentence_after(text: str, pos: int) -> str | None:
    """The answer span after a cue at `pos`: from the first non-space character to the end of
    its sentence (a period followed by whitespace or the end), its line, or the text; trailing
    spaces excluded. None when only whitespace follows.

    What ``re.compile(r"\\s*(.+?)\\s*(?:\\.\\s|\\.?$|\\n)", re.M).match(text, pos)`` gives (the
    earlier implementation), in linear time: that regex re-scans every whitespace run once per
    character of the lazy group before it, which is quadratic in a long run of spaces.
    """
    start = _WS.match(text, pos).end()
    if start == len(text):
        return None  # the regex's group would be whitespace, which tidies to nothing
    line_end = text.find("\n", start)
    if line_end < 0:
        line_end = len(text)
    # The group ends at the first of: the whitespace before a sentence-ending period, the
    # line's trailing whitespace, the end of the line. It is never empty.
    stop = line_end
    period = _PERIOD_END.search(text, start + 1, line_end)
    if period is not None:
        stop = period.start()
    end = start + len(text[start:stop].rstrip())
    return text[start:end]


def _last_hashes(text: str) -> str | None:
    """The last ``#### X`` answer (GSM8K style): X runs to the end of its line, trailing spaces
    excluded. What ``re.findall(r"####\\s*(.+?)\\s*$", text, re.M)[-1]`` gives (the earlier
    implementation), in linear time (that regex is quadratic in a long run of spaces)."""
    last, pos, n = None, 0, len(text)
    while (i := text.find("####", pos)) >= 0:
        start = _WS.match(text, i + 4).end()  # \s* may cross newlines, as in the regex
        if start == n:  # only whitespace follows
            if text[i + 4 :].strip("\n"):
                last = " "  # the regex matches a whitespace group here (it tidies to nothing)
            break  # (only newlines: no match at all, the previous one stands)
        line_end = text.find("\n", start)
        if line_end < 0:
            line_end = n
        last = text[start : start + len(text[start:line_end].rstrip())]
        pos = line_end  # what the regex consumed beyond this is whitespace: no "####" in it
    return last
