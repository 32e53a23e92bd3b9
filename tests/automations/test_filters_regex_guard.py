"""User regexes run in linear time (RE2) in any thread; what RE2 cannot compile is refused at save."""

import re
import threading
import time

import pytest

from automations.graph.regex_guard import MAX_PATTERN_LENGTH, check_pattern, safe_regex_search
from automations.runtime.matcher import keyword_matches


@pytest.mark.parametrize("pattern", [r"^hello\b", r"price\s*\d+", r"(?:hi|hello) there", r"(ab){2,5}", r"(a{3})+",
                                     r"(?i)order #\d{3,8}", r"a*a*a*a*b", r"(a+)+$", r"(a|aa)*c"])
def test_reasonable_patterns_pass(pattern):
    assert check_pattern(pattern) is None


@pytest.mark.parametrize("pattern, fragment", [
    ("", "non-empty"),
    ("x" * (MAX_PATTERN_LENGTH + 1), "longer than"),
    ("[", "missing ]"),
    (r"(\w+)\s\1", "does not compile with RE2"),
    (r"price(?= now)", "does not compile with RE2"),
    (r"(?<!not )sure", "does not compile with RE2"),
    (r"((a{1,100}){1,100}){1,100}", "does not compile with RE2"),
])
def test_patterns_re2_cannot_run_are_rejected(pattern, fragment):
    assert fragment in (check_pattern(pattern) or "")


def test_search_finds_matches():
    assert safe_regex_search(r"hel+o", "say hello").group(0) == "hello"
    assert safe_regex_search(r"bye", "say hello") is None
    assert safe_regex_search("[", "anything") is None
    assert safe_regex_search("HELLO", "say hello") is None
    assert safe_regex_search("HELLO", "say hello", flags=re.IGNORECASE) is not None
    assert safe_regex_search(r"h.llo", "say hällo") is not None


@pytest.mark.parametrize("pattern", [r"a*a*a*a*b", r"(a+)+$", r"(a|aa)*c"])
def test_backtracking_shapes_are_linear_off_the_main_thread(pattern):
    """Python's `re` needs seconds to minutes for these on a 150-character DM (and cannot be interrupted
    off the main thread, where a threaded server runs requests); RE2 answers at once, in any thread."""
    results, elapsed = [], []

    def search():
        started = time.monotonic()
        results.append(keyword_matches({"keywords": [pattern], "match_mode": "regex"}, "a" * 150 + "!"))
        results.append(safe_regex_search(pattern, "a" * 100_000 + "!"))
        elapsed.append(time.monotonic() - started)

    worker = threading.Thread(target=search)
    worker.start()
    worker.join(timeout=60)
    assert results == [False, None]
    assert elapsed[0] < 1.0
