"""Bounded regular expressions for user-supplied patterns (dm keywords, input validation).

Two layers, because Python's `re` backtracks and cannot be given a timeout:
1. Save time: `check_pattern(pattern)` rejects long patterns, patterns that don't compile, and the
   shapes that backtrack catastrophically — a quantified group containing another quantifier or an
   alternation (`(a+)+`, `(a|aa)*`), backreferences, and more than a few unbounded quantifiers.
2. Match time: `safe_regex_search(pattern, text, timeout_ms)` caps the text length and, when called on
   the main thread (gunicorn sync workers, Celery prefork children, tests), arms a SIGALRM timer that
   interrupts the regex engine (CPython's `_sre` checks signals while it backtracks). A timeout counts
   as "no match" by default. On other threads the save-time shapes and the text cap are the bound.
"""

import re
import signal
import threading

try:  # Python 3.11+ names the parser module _parser; older ones sre_parse.
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_PATTERN_LENGTH = 200
MAX_TEXT_LENGTH = 4000
MAX_UNBOUNDED_QUANTIFIERS = 4
DEFAULT_TIMEOUT_MS = 50

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
if hasattr(sre_constants, "POSSESSIVE_REPEAT"):
    _REPEATS.add(sre_constants.POSSESSIVE_REPEAT)


class RegexTimeout(Exception):
    pass


def _walk(items, inside_repeat: bool, problems: list, counter: list):
    for op, arg in items:
        if op in _REPEATS:
            low, high, sub = arg
            unbounded = high is sre_constants.MAXREPEAT
            repeats = unbounded or high > 1
            counter[0] += 1 if unbounded else 0
            if inside_repeat and low != high:
                problems.append("nested quantifiers (like (a+)+) can take exponential time")
            _walk(sub, inside_repeat or repeats, problems, counter)
        elif op is sre_constants.SUBPATTERN:
            _walk(arg[-1], inside_repeat, problems, counter)
        elif op is sre_constants.BRANCH:
            if inside_repeat:
                problems.append("alternation inside a repeated group (like (a|aa)*) can take exponential time")
            for branch in arg[1]:
                _walk(branch, inside_repeat, problems, counter)
        elif op in (sre_constants.GROUPREF, getattr(sre_constants, "GROUPREF_EXISTS", None)):
            problems.append("backreferences are not supported")
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            _walk(arg[1], inside_repeat, problems, counter)
        elif op is getattr(sre_constants, "ATOMIC_GROUP", None):
            _walk(arg, inside_repeat, problems, counter)


def check_pattern(pattern) -> str | None:
    """Why `pattern` may not be stored, or None when it is acceptable."""
    if not isinstance(pattern, str) or pattern == "":
        return "must be a non-empty string"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is longer than {MAX_PATTERN_LENGTH} characters"
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"does not compile: {exc}"
    problems: list[str] = []
    counter = [0]
    _walk(parsed, False, problems, counter)
    if problems:
        return problems[0]
    if counter[0] > MAX_UNBOUNDED_QUANTIFIERS:
        return f"uses more than {MAX_UNBOUNDED_QUANTIFIERS} unbounded quantifiers (*, +, {{n,}})"
    return None


def _raise_timeout(signum, frame):
    raise RegexTimeout()


def safe_regex_search(pattern, text, timeout_ms: int = DEFAULT_TIMEOUT_MS, *, flags: int = 0,
                      raise_on_timeout: bool = False):
    """`re.search` with a bounded input and, on the main thread, a wall-clock budget.

    Returns the match or None. A pattern that does not compile, or a search that runs past
    `timeout_ms`, returns None (or raises RegexTimeout when `raise_on_timeout`)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[:MAX_TEXT_LENGTH]
    try:
        compiled = re.compile(pattern, flags)
    except (re.error, TypeError):
        return None
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return compiled.search(text)
    previous_handler = signal.signal(signal.SIGALRM, _raise_timeout)
    previous_timer = signal.setitimer(signal.ITIMER_REAL, max(timeout_ms, 1) / 1000.0)
    try:
        return compiled.search(text)
    except RegexTimeout:
        if raise_on_timeout:
            raise
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer[0] > 0:
            # Someone else's timer was armed: give it back.
            signal.setitimer(signal.ITIMER_REAL, *previous_timer)
