"""String ops: StringNormalizer, StringConcat, StringSplit, RegexFullMatch, TfIdfVectorizer.

Strings are numpy object arrays of ``str``. Per-string work (case changes, splitting, regex) has to
call Python's ``str`` methods once per element; everything around it is vectorised.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

import numpy as np

from ...registry import NodeInfo
from ..registry import kernel


def _str_array(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


# --- StringNormalizer ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _simple_case_table(upper: bool) -> dict[int, str]:
    """Per-character case mapping (what C's towupper/towlower do, as onnxruntime uses): a
    character whose full mapping is longer (German eszett -> 'SS') is left as it is."""
    table: dict[int, str] = {}
    for cp in range(0x1E950):  # no cased characters above Adlam
        ch = chr(cp)
        m = ch.upper() if upper else ch.lower()
        if m != ch and len(m) == 1:
            table[cp] = m
    if not upper:
        table[0x130] = "i"  # LATIN CAPITAL I WITH DOT ABOVE: simple lowercase is plain 'i'
    return table


def _change_case(words: list[str], upper: bool) -> list[str]:
    # ASCII strings take str's fast path; others go through the per-character table, which
    # also avoids Python's context-dependent final-sigma rule.
    fast = str.upper if upper else str.lower
    if all(w.isascii() for w in words):
        return [fast(w) for w in words]
    table = _simple_case_table(upper)
    return [fast(w) if w.isascii() else w.translate(table) for w in words]


@kernel("StringNormalizer", since=10, factory=True)
def string_normalizer_factory(node: NodeInfo):
    """Stopwords are whole elements (as in onnxruntime), compared case-insensitively unless
    is_case_sensitive. Case changes map character by character like onnxruntime's
    towupper/towlower; ``locale`` is accepted but the mapping is Unicode's, locale-independent
    (it differs only for locale-specific rules such as Turkish dotless i)."""
    action = node.attrs.get("case_change_action", "NONE")
    if action not in ("NONE", "LOWER", "UPPER"):
        raise ValueError(f"StringNormalizer: unknown case_change_action {action!r}")
    sensitive = bool(node.attrs.get("is_case_sensitive", 0))
    stops = list(node.attrs.get("stopwords", None) or [])
    stopset = frozenset(stops if sensitive else _change_case(stops, upper=False))

    def string_normalizer(x: np.ndarray) -> np.ndarray:
        if x.ndim == 2 and x.shape[0] == 1:
            two_dim = True
        elif x.ndim == 1:
            two_dim = False
        else:
            raise ValueError(f"StringNormalizer accepts [C] or [1, C] input, got shape {x.shape}")
        words = x.reshape(-1).tolist()
        if stopset:
            keys = words if sensitive else _change_case(words, upper=False)
            words = [w for w, k in zip(words, keys) if k not in stopset]
        if action != "NONE":
            words = _change_case(words, upper=action == "UPPER")
        if not words:
            words = [""]
        return _str_array(words, (1, len(words)) if two_dim else (len(words),))

    return string_normalizer


# --- StringConcat / StringSplit ------------------------------------------------------------------


@kernel("StringConcat", since=20)
def string_concat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # np.add on object arrays calls str.__add__ elementwise with broadcasting; unlike numpy's
    # fixed-width 'U' dtype it keeps trailing NUL characters.
    out = np.add(np.asarray(x, dtype=object), np.asarray(y, dtype=object))
    return np.asarray(out, dtype=object)


@kernel("StringSplit", since=20)
def string_split(
    x: np.ndarray, *, delimiter: str | None = None, maxsplit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """As onnxruntime: an empty string has no substrings, and without a delimiter the string
    is stripped first so that the unsplit remainder after ``maxsplit`` splits has no trailing
    whitespace. Whitespace is Python's (the spec's "whitespace characters"; onnxruntime only
    splits on spaces)."""
    limit = -1 if maxsplit is None else int(maxsplit)
    strs = x.reshape(-1).tolist()
    if delimiter:
        parts = [s.split(delimiter, limit) if s else [] for s in strs]
    else:
        parts = [s.strip().split(None, limit) for s in strs]
    counts = np.array([len(p) for p in parts], dtype=np.int64)
    width = int(counts.max()) if counts.size else 0
    y = np.full((len(parts), width), "", dtype=object)
    if width:
        # Scatter every piece to (row, position) in one go.
        rows = np.repeat(np.arange(len(parts)), counts)
        cols = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
        y[rows, cols] = _str_array([p for ps in parts for p in ps], (rows.size,))
    return y.reshape((*x.shape, width)), counts.reshape(x.shape)


# --- RegexFullMatch ------------------------------------------------------------------------------

# RE2's Perl classes are ASCII-only, unlike Python's Unicode \d \w \s.
_RE2_PERL = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_RE2_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_WORD = "[0-9A-Za-z_]"
_RE2_UNSUPPORTED = ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?P=")


def _cp_escape(cp: int) -> str:
    return f"\\U{cp:08x}"


@functools.lru_cache(maxsize=64)
def _unicode_class(name: str) -> str:
    """Character-class body (ranges) for a Unicode general category such as L or Lu."""
    if name == "Any":
        return "\\x00-\\U0010ffff"
    if not (1 <= len(name) <= 2 and name[0].isupper()):
        raise ValueError(f"RegexFullMatch: Unicode class \\p{{{name}}} is not supported (only categories)")
    parts: list[str] = []
    start = prev = -2
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)).startswith(name):
            if cp != prev + 1:
                if start >= 0:
                    parts.append(f"{_cp_escape(start)}-{_cp_escape(prev)}")
                start = cp
            prev = cp
    if start >= 0:
        parts.append(f"{_cp_escape(start)}-{_cp_escape(prev)}")
    if not parts:
        raise ValueError(f"RegexFullMatch: unknown Unicode category \\p{{{name}}}")
    return "".join(parts)


def _re2_to_python(pattern: str) -> str:
    r"""Translate RE2 syntax to an equivalent Python ``re`` pattern.

    Handled: ASCII-only ``\d \w \s \b`` (and negations), ``\z``, ``$`` as end of text unless the
    ``m`` flag is set, ``\Q...\E``, ``\pX`` / ``\p{Xx}`` / ``\PX`` general categories,
    POSIX classes ``[[:alpha:]]``, ``(?<name>...)``. Constructs RE2 rejects (lookaround,
    backreferences, atomic groups) raise ``ValueError`` as they would in RE2.
    """
    multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            i += 2
            if e == "Q":
                end = pattern.find("\\E", i)
                end = n if end < 0 else end
                out.append(re.escape(pattern[i:end]))
                i = end + 2
            elif e.lower() in _RE2_PERL:
                body = _RE2_PERL[e.lower()]
                if in_class:
                    if e.isupper():
                        raise ValueError(f"RegexFullMatch: \\{e} inside [...] is not supported")
                    out.append(body)
                else:
                    out.append(f"[{'^' if e.isupper() else ''}{body}]")
            elif e in "bB" and not in_class:
                edge = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
                out.append(edge if e == "b" else f"(?!{edge})")
            elif e == "z" and not in_class:
                out.append("\\Z")
            elif e in "pP":
                if i < n and pattern[i] == "{":
                    end = pattern.index("}", i)
                    name, i = pattern[i + 1 : end], end + 1
                else:
                    name, i = pattern[i : i + 1], i + 1
                neg = (e == "P") != name.startswith("^")
                body = _unicode_class(name.lstrip("^"))
                if in_class:
                    if neg:
                        raise ValueError("RegexFullMatch: negated \\P{..} inside [...] is not supported")
                    out.append(body)
                else:
                    out.append(f"[{'^' if neg else ''}{body}]")
            elif e in "123456789" and not in_class:
                raise ValueError("RegexFullMatch: backreferences are not supported by RE2")
            else:
                out.append("\\" + e)
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2 : end] if end > 0 else ""
                if name not in _RE2_POSIX:
                    raise ValueError(f"RegexFullMatch: POSIX class [:{name}:] is not supported")
                out.append(_RE2_POSIX[name])
                i = end + 2
                continue
            if c == "]":
                in_class = False
            out.append("\\[" if c == "[" else c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ']' is literal
                out.append("\\]")
                i += 1
            continue
        if c == "(":
            if pattern.startswith(_RE2_UNSUPPORTED, i):
                raise ValueError("RegexFullMatch: lookaround, atomic groups and backreferences are not RE2")
            if pattern.startswith("(?<", i):
                out.append("(?P<")
                i += 3
                continue
        if c == "$" and not multiline:
            out.append("\\Z")
        else:
            out.append(c)
        i += 1
    return "".join(out)


@kernel("RegexFullMatch", since=20, factory=True)
def regex_full_match_factory(node: NodeInfo):
    r"""Matches with Python's ``re.fullmatch`` on the pattern translated from RE2 syntax (see
    :func:`_re2_to_python`). Remaining differences from RE2: case-insensitive matching follows
    Python's Unicode case folding, Unicode script classes (``\p{Greek}``) are not supported,
    RE2's ungreedy flag ``(?U)`` is not honoured, and some patterns RE2 rejects (possessive
    quantifiers) are accepted."""
    pattern = node.attrs.get("pattern", "")
    try:
        regex = re.compile(_re2_to_python(pattern))
    except re.error as e:
        raise ValueError(f"RegexFullMatch: invalid pattern {pattern!r}: {e}") from e
    match = regex.fullmatch

    def regex_full_match(x: np.ndarray) -> np.ndarray:
        flat = [match(s) is not None for s in x.reshape(-1).tolist()]
        return np.array(flat, dtype=np.bool_).reshape(x.shape)

    return regex_full_match


# --- TfIdfVectorizer -----------------------------------------------------------------------------


class _NgramTrie:
    """The pool's n-grams as a trie stored level by level in sorted code arrays.

    Level k holds the distinct length-k prefixes of pool n-grams. A prefix's node id at level k is
    its position in ``codes[k]``, where code = parent node id * n_tokens + token id. So walking
    the trie for many windows at once is one searchsorted per level.
    """

    def __init__(self, pool: list[Any], is_str: bool, grams: list[tuple[int, list[int]]]) -> None:
        # grams: (output index, token positions into pool) for every n-gram to count.
        vocab = np.unique(np.array(pool, dtype=str if is_str else np.int64))
        self.vocab = vocab
        self.n_tok = max(len(vocab), 1)
        self.depth = max((len(p) for _, p in grams), default=0)
        pool_ids = np.searchsorted(vocab, np.array(pool, dtype=vocab.dtype))
        self.codes: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []
        parent = [0] * len(grams)  # node id of each gram's prefix at the previous level
        for level in range(self.depth):
            live = [i for i, (_, p) in enumerate(grams) if len(p) > level]
            codes = np.array(
                [parent[i] * self.n_tok + int(pool_ids[grams[i][1][level]]) for i in live],
                dtype=np.int64,
            )
            uniq = np.unique(codes)
            out = np.full(len(uniq), -1, dtype=np.int64)
            for i, node_id in zip(live, np.searchsorted(uniq, codes).tolist()):
                parent[i] = node_id
                if len(grams[i][1]) == level + 1:
                    out[node_id] = grams[i][0]  # a later duplicate wins (onnxruntime rejects them)
            self.codes.append(uniq)
            self.outputs.append(out)

    def token_ids(self, x: np.ndarray) -> np.ndarray:
        """Vocabulary index of each input token, or -1 where the token is not in the pool."""
        if self.vocab.dtype.kind == "U":
            vals = np.asarray(x, dtype=str)
        else:
            vals = np.asarray(x).astype(np.int64)
        if not len(self.vocab):
            return np.full(vals.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.vocab, vals)
        pos_c = np.minimum(pos, len(self.vocab) - 1)
        return np.where(self.vocab[pos_c] == vals, pos_c, -1).astype(np.int64)

    def step(self, level: int, node: np.ndarray, tok: np.ndarray) -> np.ndarray:
        """Child node ids at ``level`` (or -1) for parents ``node`` (-1 = dead) and tokens."""
        codes = self.codes[level]
        code = np.maximum(node, 0) * self.n_tok + tok
        pos = np.minimum(np.searchsorted(codes, code), len(codes) - 1)
        ok = (node >= 0) & (tok >= 0) & (codes[pos] == code)
        return np.where(ok, pos, -1)


@kernel("TfIdfVectorizer", since=9, factory=True)
def tfidf_vectorizer_factory(node: NodeInfo):
    a = node.attrs
    mode = a["mode"]
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ValueError(f"TfIdfVectorizer: unknown mode {mode!r}")
    min_n, max_n = int(a["min_gram_length"]), int(a["max_gram_length"])
    max_skip = int(a["max_skip_count"])
    counts = list(a["ngram_counts"])
    indexes = np.asarray(a["ngram_indexes"], dtype=np.int64)
    pool_s, pool_i = a.get("pool_strings"), a.get("pool_int64s")
    is_str = bool(pool_s)
    pool: list[Any] = list(pool_s or []) if is_str else list(pool_i or [])
    out_size = int(indexes.max()) + 1 if indexes.size else 0
    weights = a.get("weights")
    w = None
    if weights:
        # weights[k] scales the k-th pool n-gram, which is counted in column ngram_indexes[k]
        # (the spec's wording and onnxruntime's behaviour).
        w = np.zeros(out_size, dtype=np.float32)
        w[indexes[: len(weights)]] = np.asarray(weights, dtype=np.float32)[: len(indexes)]

    # Enumerate pool n-grams in order: ngram_counts[k] is where the (k+1)-grams start. Every
    # n-gram takes the next ngram_indexes slot, counted or not.
    grams: list[tuple[int, list[int]]] = []
    gram_no = 0
    for k, start in enumerate(counts):
        n = k + 1
        end = counts[k + 1] if k + 1 < len(counts) else len(pool)
        for s in range(start, end - n + 1, n):
            if min_n <= n <= max_n:
                grams.append((int(indexes[gram_no]), list(range(s, s + n))))
            gram_no += 1
    trie = _NgramTrie(pool, is_str, grams)

    def tfidf_vectorizer(x: np.ndarray) -> np.ndarray:
        if x.ndim > 2:
            raise ValueError(f"TfIdfVectorizer accepts [C] or [N, C] input, got shape {x.shape}")
        rows = x.reshape(1, -1) if x.ndim < 2 else x
        n_rows, length = rows.shape
        freq = np.zeros((n_rows, out_size), dtype=np.int64)
        if rows.size and trie.depth:
            tok = trie.token_ids(rows)
            hit_rows: list[np.ndarray] = []
            hit_cols: list[np.ndarray] = []
            for skip in range(1, max_skip + 2):
                # Unigrams do not depend on the skip distance: count them at distance 1 only.
                first = max(min_n, 1 if skip == 1 else 2)
                if first > max_n:
                    break
                node = np.zeros((n_rows, length), dtype=np.int64)  # the root, at every start
                for level in range(min(max_n, trie.depth)):
                    span = level * skip
                    if span >= length:
                        break
                    # Windows starting at s < length - span still fit at this n-gram length.
                    node = trie.step(level, node[:, : length - span], tok[:, span:])
                    if level + 1 >= first:
                        out = np.where(node >= 0, trie.outputs[level][np.maximum(node, 0)], -1)
                        r, c = np.nonzero(out >= 0)
                        hit_rows.append(r)
                        hit_cols.append(out[r, c])
                    if not (node >= 0).any():
                        break
            if hit_rows:
                r = np.concatenate(hit_rows)
                c = np.concatenate(hit_cols)
                freq = np.bincount(r * out_size + c, minlength=n_rows * out_size)
                freq = freq.reshape(n_rows, out_size)
        if mode == "TF":
            y = freq.astype(np.float32)
        elif mode == "IDF":
            y = (freq > 0).astype(np.float32)
            if w is not None:
                y *= w
        else:
            y = freq.astype(np.float32)
            if w is not None:
                y *= w
        return y if x.ndim == 2 else y.reshape(out_size)

    return tfidf_vectorizer
