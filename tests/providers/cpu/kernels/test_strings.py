"""String kernels (StringNormalizer, StringConcat, StringSplit, RegexFullMatch, TfIdfVectorizer)
against onnx.reference, onnxruntime (the reference differs from the spec in places, noted per
test) and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto
from tests.oracle import assert_close, check_node, node_model, run_onnxlite, run_reference

from onnxlite.providers.cpu.kernels.strings import _re2_to_python


def S(*values, shape=None):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out.reshape(shape if shape is not None else (len(values),))


def run1(op, inputs, attrs=None, outputs=("y",), opset=20):
    return run_onnxlite(node_model(op, inputs, attrs, outputs=outputs, opset=opset), inputs)


def check_strings(op, inputs, attrs=None, opset=20):
    """Compare with onnx.reference, which returns numpy 'U' arrays where onnxlite (like
    onnxruntime) returns object arrays of str."""
    model = node_model(op, inputs, attrs, opset=opset)
    (got,) = run_onnxlite(model, inputs)
    (want,) = run_reference(model, inputs)
    assert got.dtype == object
    assert_close(got, np.asarray(want).astype(object))


# --- StringConcat / StringSplit ------------------------------------------------------------------


def test_string_concat_broadcasting_and_unicode():
    check_strings("StringConcat", {"x": S("a", "é", "", shape=(3, 1)), "y": S("x", "y")})
    check_strings("StringConcat", {"x": S("a", shape=()), "y": S("b", shape=())})


def test_string_concat_keeps_trailing_nul():
    (z,) = run1("StringConcat", {"x": S("a\x00"), "y": S("b\x00")})
    assert z.tolist() == ["a\x00b\x00"]


@pytest.mark.parametrize(
    "attrs",
    [{"delimiter": ","}, {"delimiter": ",", "maxsplit": 1}, {"delimiter": "ab"}, {"maxsplit": 0}],
)
def test_string_split_against_reference(attrs):
    x = S("a,b,,c", "x", "ab,ab,abab", "q,", shape=(2, 2))
    check_node("StringSplit", {"x": x}, attrs, outputs=("y", "z"), opset=20)


def test_string_split_whitespace_strips_and_empty_strings_have_no_parts():
    # onnxruntime's behaviour (the reference keeps trailing blanks after maxsplit and gives one
    # empty part for an empty string).
    y, z = run1("StringSplit", {"x": S("  x y  z ", "", "a\tb")}, {"maxsplit": 1}, ("y", "z"))
    assert z.tolist() == [2, 0, 2]
    assert y.tolist() == [["x", "y  z"], ["", ""], ["a", "b"]]
    y, z = run1("StringSplit", {"x": S("", "a,")}, {"delimiter": ","}, ("y", "z"))
    assert z.tolist() == [0, 2] and y.tolist() == [["", ""], ["a", ""]]


def test_string_split_empty_input():
    y, z = run1("StringSplit", {"x": S(shape=(0, 3))}, {}, ("y", "z"))
    assert y.shape == (0, 3, 0) and z.shape == (0, 3) and z.dtype == np.int64


# --- RegexFullMatch ------------------------------------------------------------------------------


def test_regex_full_match_against_reference():
    x = S("www.google.com", "www.facebook.com", "www.bbc.co.uk", "", shape=(2, 2))
    check_node("RegexFullMatch", {"x": x}, {"pattern": r"www\.[\w.-]+\.\bcom\b"}, opset=20)
    check_node("RegexFullMatch", {"x": x}, {"pattern": ""}, opset=20)


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        (r"\w+", ["abc_1"], ["é", "a b"]),  # RE2 classes are ASCII
        (r"\d+\z", ["123"], ["١٢", "12\n"]),
        (r"a$", ["a"], ["a\n"]),  # $ is the end of text
        (r"\Qa.b\E+", ["a.b", "a.bbb"], ["axb"]),
        (r"\pL+", ["héllo", "Ωmega"], ["a1"]),
        (r"\p{Lu}\P{Lu}*", ["Abc"], ["ABC", "abc"]),
        (r"[[:alpha:]_]+", ["ab_c"], ["a1"]),
        (r"(?<first>a)b", ["ab"], ["b"]),
        (r"(?i)straße", ["STRAßE"], ["strasse"]),
        (r"[^\d]x", ["ax"], ["1x"]),
    ],
)
def test_regex_re2_syntax(pattern, matches, misses):
    (y,) = run1("RegexFullMatch", {"x": S(*matches, *misses)}, {"pattern": pattern})
    assert y.dtype == np.bool_
    assert y.tolist() == [True] * len(matches) + [False] * len(misses)


@pytest.mark.parametrize("pattern", [r"(a)\1", r"a(?=b)", r"(?<!a)b", r"(?>a)", r"\p{Greek}", "("])
def test_regex_patterns_re2_rejects_fail_at_build(pattern):
    with pytest.raises(Exception, match="RegexFullMatch"):
        run1("RegexFullMatch", {"x": S("a")}, {"pattern": pattern})


def test_re2_translation_details():
    assert _re2_to_python(r"\\z") == r"\\z"  # an escaped backslash, then a literal z
    assert _re2_to_python(r"[]a]") == r"[\]a]"
    assert _re2_to_python(r"[[]") == r"[\[]"


def test_regex_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    x = S("a", "abc", "ABC", "123", "x@y.com", "a.b", "", "a\n", "é", "aa")
    for pattern in [r"[a-z]+", r"\w+@\w+\.com", r"(?i)abc", r"\S*", r"a|b|\d+", r"\pL"]:
        model = node_model("RegexFullMatch", {"x": x}, {"pattern": pattern}, opset=20)
        want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
        assert_close(run_onnxlite(model, {"x": x}), want)


# --- StringNormalizer ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["NONE", "LOWER", "UPPER"])
def test_string_normalizer_case_sensitive_against_reference(action):
    x = S("monday", "Tuesday", "wednesday", "MONDAY")
    attrs = {"case_change_action": action, "is_case_sensitive": 1, "stopwords": ["monday"]}
    check_strings("StringNormalizer", {"x": x}, attrs, opset=10)
    check_strings("StringNormalizer", {"x": x.reshape(1, 4)}, attrs, opset=10)


def test_string_normalizer_stopwords_are_whole_elements_case_insensitive():
    x = S("Monday", "monday tuesday", "MONDAY", "Straße")
    (y,) = run1("StringNormalizer", {"x": x}, {"stopwords": ["monday", "STRASSE"]}, opset=10)
    assert y.tolist() == ["monday tuesday", "Straße"]


def test_string_normalizer_all_removed_and_per_character_case():
    (y,) = run1("StringNormalizer", {"x": S("a", "A", shape=(1, 2))}, {"stopwords": ["a"]}, opset=10)
    assert y.shape == (1, 1) and y.tolist() == [[""]]
    (y,) = run1("StringNormalizer", {"x": S()}, {"stopwords": ["a"]}, opset=10)
    assert y.tolist() == [""]
    # Character by character like towupper (eszett stays), no final-sigma rule.
    x = S("Straße", "ΟΔΟΣ", "İi")
    (y,) = run1("StringNormalizer", {"x": x}, {"case_change_action": "UPPER"}, opset=10)
    assert y.tolist() == ["STRAßE", "ΟΔΟΣ", "İI"]
    (y,) = run1("StringNormalizer", {"x": x}, {"case_change_action": "LOWER"}, opset=10)
    assert y.tolist() == ["straße", "οδοσ", "ii"]


def test_string_normalizer_rejects_other_shapes():
    with pytest.raises(Exception, match="StringNormalizer"):
        run1("StringNormalizer", {"x": S("a", "b", shape=(2, 1))}, {}, opset=10)


# --- TfIdfVectorizer -----------------------------------------------------------------------------

POOL = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]  # unigrams 2 3 5 4, bigrams (5,6) (7,8) (6,7)


def tfidf_attrs(mode, lo, hi, skip, **kw):
    return {
        "mode": mode,
        "min_gram_length": lo,
        "max_gram_length": hi,
        "max_skip_count": skip,
        "ngram_counts": [0, 4],
        "ngram_indexes": list(range(7)),
        "pool_int64s": POOL,
        **kw,
    }


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
@pytest.mark.parametrize(("lo", "hi", "skip"), [(1, 1, 0), (2, 2, 0), (1, 2, 0), (1, 2, 3), (2, 2, 5)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_tfidf_against_reference(mode, lo, hi, skip, dtype):
    x = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], dtype)
    # (ngram_indexes is the identity here: the reference indexes weights by output column.)
    weights = {"weights": [0.5, 1.0, 2.0, 1.5, 0.25, 3.0, 1.0]}
    check_node("TfIdfVectorizer", {"x": x}, tfidf_attrs(mode, lo, hi, skip, **weights), opset=9)
    check_node("TfIdfVectorizer", {"x": x[1]}, tfidf_attrs(mode, lo, hi, skip, **weights), opset=9)


def test_tfidf_strings_and_empty_input():
    attrs = {
        "mode": "TF",
        "min_gram_length": 1,
        "max_gram_length": 2,
        "max_skip_count": 1,
        "ngram_counts": [0, 3],
        "ngram_indexes": [0, 1, 2, 3],
        "pool_strings": ["a", "b", "c", "a", "b"],
    }
    x = S("a", "x", "b", "a", "b", "c", shape=(2, 3))
    check_node("TfIdfVectorizer", {"x": x}, attrs, opset=9)
    (y,) = run1("TfIdfVectorizer", {"x": S(shape=(2, 0))}, attrs, opset=9)
    assert y.shape == (2, 4) and not y.any()


def test_tfidf_weights_follow_pool_order():
    # weights[k] scales the k-th pool n-gram, whichever output column it is counted in (the
    # spec and onnxruntime; the reference indexes weights by output column).
    attrs = {
        "mode": "TFIDF",
        "min_gram_length": 1,
        "max_gram_length": 1,
        "max_skip_count": 0,
        "ngram_counts": [0],
        "ngram_indexes": [2, 0, 1],
        "pool_int64s": [10, 20, 30],
        "weights": [1.0, 2.0, 3.0],
    }
    x = np.array([10, 20, 20, 30, 30, 30], np.int64)
    (y,) = run1("TfIdfVectorizer", {"x": x}, attrs, opset=9)
    np.testing.assert_allclose(y, [2.0 * 2, 3.0 * 3, 1.0 * 1])
    ort = pytest.importorskip("onnxruntime")
    model = node_model("TfIdfVectorizer", {"x": x}, attrs, opset=9)
    assert_close(y, ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0])


def test_tfidf_matches_onnxruntime_random():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(3)
    for _ in range(20):
        hi = int(rng.integers(1, 4))
        counts, pool = [], []
        for n in range(1, hi + 1):
            counts.append(len(pool))
            grams = {tuple(rng.integers(0, 5, size=n).tolist()) for _ in range(3)}
            pool += [t for g in sorted(grams) for t in g]
        n_grams = sum(
            ((counts[i + 1] if i + 1 < len(counts) else len(pool)) - counts[i]) // (i + 1)
            for i in range(len(counts))
        )
        attrs = {
            "mode": str(rng.choice(["TF", "IDF", "TFIDF"])),
            "min_gram_length": int(rng.integers(1, hi + 1)),
            "max_gram_length": hi,
            "max_skip_count": int(rng.integers(0, 3)),
            "ngram_counts": counts,
            "ngram_indexes": rng.permutation(n_grams).tolist(),
            "pool_int64s": pool,
            "weights": rng.random(n_grams).tolist(),
        }
        x = rng.integers(0, 6, size=(3, 9)).astype(np.int64)
        model = node_model("TfIdfVectorizer", {"x": x}, attrs, opset=9)
        want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
        assert_close(run_onnxlite(model, {"x": x}), want)


def test_tfidf_int32_graph_input_type():
    x = np.array([[2, 3, 5]], np.int32)
    model = node_model("TfIdfVectorizer", {"x": x}, tfidf_attrs("TF", 1, 1, 0), opset=9)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.INT32
    (y,) = run_onnxlite(model, {"x": x})
    assert y.dtype == np.float32 and y.tolist() == [[1, 1, 1, 0, 0, 0, 0]]
