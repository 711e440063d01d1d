"""Character-level tokenizer for the zoo, backed by `tokenizers` and saved as a HF tokenizer.

One token per character keeps every scratchpad step the same length in tokens, and
``<think>`` / ``</think>`` are single special tokens so budgets count thinking exactly.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK, THINK, END_THINK = "<pad>", "<eos>", "<unk>", "<think>", "</think>"
SPECIALS = [PAD, EOS, UNK, THINK, END_THINK]
# Printable ASCII plus newline/tab: the zoo only trains on arithmetic, but any prompt (GSM8K,
# lm-eval tasks) must still tokenize so the whole pipeline can run on it.
CHARS = [c for c in string.printable if c not in "\r\x0b\x0c"]


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=[THINK, END_THINK],
        padding_side="left",
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
