"""User-supplied regular expressions (dm keywords, input validation), evaluated in linear time.

Python's `re` backtracks: a pattern like `a*a*a*a*b` takes polynomial time in the text and holds the
GIL while it does, and nothing can interrupt it off the main thread (a threaded server, gunicorn
threads, a Celery thread pool). These patterns therefore go through RE2 (`google-re2`), whose matching
time is linear in the text whatever the pattern, in every process model. What RE2 cannot compile
(backreferences, lookaround, too large a program) is refused when the pattern is saved, so a stored
pattern always runs.
"""

from __future__ import annotations

import functools
import re

import re2

MAX_PATTERN_LENGTH = 200
# Memory RE2 may use for one compiled pattern; a bigger program (`(a{1,100}){1,100}`) does not compile.
MAX_PROGRAM_BYTES = 1 << 20


def _options(case_sensitive: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_BYTES
    options.case_sensitive = case_sensitive
    return options


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str, case_sensitive: bool):
    return re2.compile(pattern, _options(case_sensitive))


def check_pattern(pattern) -> str | None:
    """Why `pattern` may not be stored, or None when it is acceptable."""
    if not isinstance(pattern, str) or pattern == "":
        return "must be a non-empty string"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is longer than {MAX_PATTERN_LENGTH} characters"
    try:
        _compiled(pattern, True)
    except (re2.error, TypeError, ValueError) as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return f"does not compile with RE2, the linear-time engine (no backreferences or lookaround): {reason}"
    return None


def safe_regex_search(pattern, text, *, flags: int = 0):
    """Search `text` for `pattern` in linear time. `flags` may carry `re.IGNORECASE`. Returns the match
    or None; a pattern that does not compile (never stored, see `check_pattern`) matches nothing."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        compiled = _compiled(pattern, not flags & re.IGNORECASE)
    except (re2.error, TypeError, ValueError):
        return None
    return compiled.search(text)
