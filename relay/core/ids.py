"""Prefixed random public ids (`auto_…`, `arun_…`): readable in logs, unguessable, type-tagged."""

import secrets
import string

from django.db import models

_ALPHABET = string.ascii_lowercase + string.digits
ID_RANDOM_LENGTH = 20


_UNBIASED_BELOW = 256 - 256 % len(_ALPHABET)  # bytes at or above this would favour the first letters


def new_id(prefix: str) -> str:
    """One read of the system's randomness per id (not one per character), uniform over the alphabet."""
    chars: list[str] = []
    while len(chars) < ID_RANDOM_LENGTH:
        randomness = secrets.token_bytes(ID_RANDOM_LENGTH + 4)
        chars += [_ALPHABET[b % len(_ALPHABET)] for b in randomness if b < _UNBIASED_BELOW]
    return f"{prefix}_" + "".join(chars[:ID_RANDOM_LENGTH])


class PrefixedIdField(models.CharField):
    """Primary key holding `<prefix>_<20 random chars>`, generated on instantiation."""

    def __init__(self, prefix: str, *args, **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        kwargs["default"] = _IdFactory(prefix)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("default", None)
        kwargs.pop("max_length", None)
        kwargs.pop("primary_key", None)
        kwargs.pop("editable", None)
        return name, path, [self.prefix, *args], kwargs


class _IdFactory:
    """A picklable, comparable default callable (migrations compare field defaults)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def __eq__(self, other):
        return isinstance(other, _IdFactory) and other.prefix == self.prefix

    def __hash__(self):
        return hash(self.prefix)
