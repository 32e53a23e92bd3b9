"""User regexes are bounded: rejected shapes at save time, a time budget at match time."""

import time

import pytest

from automations.graph.regex_guard import (
    MAX_PATTERN_LENGTH,
    MAX_TEXT_LENGTH,
    RegexTimeout,
    check_pattern,
    safe_regex_search,
)


@pytest.mark.parametrize("pattern", [r"^hello\b", r"price\s*\d+", r"(?:hi|hello) there", r"(ab){2,5}", r"(a{3})+",
                                     r"(?i)order #\d{3,8}"])
def test_reasonable_patterns_pass(pattern):
    assert check_pattern(pattern) is None


@pytest.mark.parametrize("pattern, fragment", [
    ("", "non-empty"),
    ("x" * (MAX_PATTERN_LENGTH + 1), "longer than"),
    ("[", "does not compile"),
    (r"(a+)+$", "nested quantifiers"),
    (r"(a*)*b", "nested quantifiers"),
    (r"(a{1,3})+", "nested quantifiers"),
    (r"(a|aa)*c", "alternation"),
    (r"(\w+)\s\1", "backreferences"),
    (r"a.*b.*c.*d.*e.*f", "unbounded quantifiers"),
])
def test_dangerous_or_broken_patterns_are_rejected(pattern, fragment):
    assert fragment in (check_pattern(pattern) or "")


def test_search_finds_matches():
    assert safe_regex_search(r"hel+o", "say hello").group(0) == "hello"
    assert safe_regex_search(r"bye", "say hello") is None
    assert safe_regex_search("[", "anything") is None


def test_catastrophic_search_is_cut_off_by_the_time_budget():
    started = time.monotonic()
    assert safe_regex_search(r"(a+)+$", "a" * 40 + "b", timeout_ms=50) is None
    assert time.monotonic() - started < 2
    with pytest.raises(RegexTimeout):
        safe_regex_search(r"(a+)+$", "a" * 40 + "b", timeout_ms=20, raise_on_timeout=True)


def test_text_is_capped():
    assert safe_regex_search(r"needle", "x" * MAX_TEXT_LENGTH + "needle") is None
