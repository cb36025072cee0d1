"""Opaque tokens handed to callers: list page tokens and watch resume tokens, sealed so that they tell nothing and
cannot be forged.

A token's fields (JSON) are encrypted and authenticated with AES-GCM under a token key of the service's own, with
the kind of token and the caller it was issued to (the owner hash) as associated data:
- it reads as noise: not even two tokens sealed for one position look alike (each has a fresh nonce), so nothing in
  it (a position, a batch id, how far a service-wide sequence has moved) tells a caller anything;
- altered, forged, of another kind or another caller's, it does not open: INVALID_ARGUMENT naming the field;
- keys come as a keyring of numbered generations (`TokenKeys`): the newest seals, every one held opens. A token of
  a generation older than every key held was sealed by a retired key: FAILED_PRECONDITION, start over, as for a
  token past what the service keeps.
The token key is not the owner-hash secret: rotating it never changes who a caller is in the registry.

Layout: base64url(version 2 | generation (2 bytes) | nonce (12) | ciphertext and tag). A token is input like any
other: bounded before it is decoded, and every field checked for its type and range after it opens (ids as ids,
epoch seconds and revisions within what SQLite and a float hold), whatever a leaked key could make one say.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from otari_batch_grpc.server.domain.errors import Code, FieldViolation, ServiceError, invalid_argument
from otari_batch_grpc.server.util.ids import is_id
from otari_batch_grpc.server.util.quoting import quoted

# The longest token issued: a list token for an id and a provider of MAX_ID_CHARS four-byte characters each
# (2 x 1,024 bytes of UTF-8, plus ~100 of JSON and 31 of seal) is 2,900 characters of base64.
MAX_TOKEN_CHARS = 4096
# Epoch seconds in a list position: a batch's created_at comes from a Timestamp (int64 nanoseconds, so within
# +-9.3e9 s) and first_seen from the clock. 2**40 s (~35,000 years) is past both, and exact as a float.
MAX_EPOCH_SECONDS = 2**40
# Revisions and WatchBatches positions are SQLite integers (int64): well inside it, with room to add one.
MAX_REVISION = 2**62
# Secrets of the keyring, in characters, at least.
MIN_SECRET_CHARS = 32
MAX_GENERATION = 0xFFFF

_VERSION = 2
_HEADER = 3  # version, generation
_NONCE = 12
_TAG = 16
_SET_DIGEST = re.compile(r"all|[0-9a-f]{16}")
_ORIGIN = re.compile(r"[0-9a-f]{0,32}")  # a replica's name (Store.origin); '' for a store of one process's own


class ManyPosition(NamedTuple):
    """Where a WatchBatches stream is: every revision up to `seq` delivered (but see many.py), reached at `at`
    (epoch seconds; 0.0 in a token sealed before tokens said it) on the replica named `by`."""

    seq: int
    at: float = 0.0
    by: str = ""


_DERIVE = b"otari-batch-grpc page and resume tokens"

PAGE, WATCH, MANY = "page", "watch", "many"


class TokenKeysError(ValueError):
    """TOKEN_KEYS cannot be read as a keyring (said at start, with what to fix)."""


class TokenKeys:
    """The keyring: secrets by generation; the newest seals, every one held opens."""

    def __init__(self, secrets: Mapping[int, bytes]) -> None:
        if not secrets:
            raise TokenKeysError("a keyring needs at least one key")
        for generation, secret in secrets.items():
            if not 1 <= generation <= MAX_GENERATION:
                raise TokenKeysError(f"generation {generation} is not within 1..{MAX_GENERATION}")
            if len(secret) < MIN_SECRET_CHARS:
                raise TokenKeysError(f"the secret of generation {generation} is shorter than {MIN_SECRET_CHARS}")
        self.secrets = dict(secrets)
        self._ciphers = ciphers(secrets, _DERIVE)
        self.current = max(self._ciphers)
        self.oldest = min(self._ciphers)

    @classmethod
    def parse(cls, text: str) -> TokenKeys:
        """`TOKEN_KEYS`: comma-separated `generation:secret` pairs, e.g. `2:<new secret>,1:<old secret>`."""
        secrets: dict[int, bytes] = {}
        for part in (p.strip() for p in text.split(",")):
            generation, sep, secret = part.partition(":")
            if not sep or not generation.strip().isdigit() or not secret.strip():
                raise TokenKeysError("write each key as <generation>:<secret>, e.g. 2:<secret>,1:<older secret>")
            if int(generation) in secrets:
                raise TokenKeysError(f"generation {int(generation)} is given twice")
            secrets[int(generation)] = secret.strip().encode()
        return cls(secrets)

    def seal(self, kind: str, owner: str, fields: Mapping[str, Any]) -> str:
        header = bytes((_VERSION,)) + self.current.to_bytes(2, "big")
        nonce = os.urandom(_NONCE)
        # UTF-8, not \\u escapes: an id of non-ASCII characters stays within MAX_TOKEN_CHARS.
        plain = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        sealed = self._ciphers[self.current].encrypt(nonce, plain, _context(header, kind, owner))
        return base64.urlsafe_b64encode(header + nonce + sealed).decode().rstrip("=")

    def open(
        self, kind: str, owner: str, token: str, *, field: str, how: str, retired: Callable[[], ServiceError]
    ) -> dict[str, Any]:
        """The fields of a token this service sealed for `owner`; INVALID_ARGUMENT naming `field` for anything else,
        and `retired()` for one sealed by a key older than every key held."""
        if len(token) > MAX_TOKEN_CHARS:
            _reject(
                field, f"is not a token this service issued (those are at most {MAX_TOKEN_CHARS:,} characters); {how}"
            )
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < _HEADER + _NONCE + _TAG or raw[0] != _VERSION:
            _reject(field, f"is not a token this service issued; {how}")
        generation = int.from_bytes(raw[1:_HEADER], "big")
        cipher = self._ciphers.get(generation)
        if cipher is None:
            if 1 <= generation < self.oldest:
                raise retired()
            _reject(field, f"is not a token this service issued; {how}")
        try:
            plain = cipher.decrypt(
                raw[_HEADER : _HEADER + _NONCE], raw[_HEADER + _NONCE :], _context(raw[:_HEADER], kind, owner)
            )
            data = json.loads(plain)
        except (InvalidTag, ValueError):
            data = None
        if not isinstance(data, dict):
            _reject(field, f"was not issued to you by this service (altered, or another caller's); {how}")
        return data


def ciphers(secrets: Mapping[int, bytes], purpose: bytes) -> dict[int, AESGCM]:
    """An AES-GCM cipher per generation, its key derived from the secret for one purpose (a secret serves several
    purposes without any two sharing a key)."""
    return {g: AESGCM(hmac.new(s, purpose, hashlib.sha256).digest()) for g, s in secrets.items()}


def _context(header: bytes, kind: str, owner: str) -> bytes:
    """What a token is bound to besides its key: its layout, its kind and its caller."""
    return header + kind.encode() + b"\0" + owner.encode()


class CallerTokens:
    """The tokens of one caller: sealed for it, opened only from it."""

    __slots__ = ("_keys", "_owner")

    def __init__(self, keys: TokenKeys, owner: str) -> None:
        self._keys, self._owner = keys, owner

    # -- ListBatches ---------------------------------------------------------------------------------------------
    def page(self, position: tuple[float, float, str], provider: str) -> str:
        """Where the next ListBatches page starts: after this (created_at, first_seen, id), newest first."""
        at, seen, after = position
        return self._keys.seal(PAGE, self._owner, {"at": at, "seen": seen, "after": after, "provider": provider})

    def page_position(self, token: str, provider: str) -> tuple[float, float, str]:
        """The position a ListBatches page_token continues after, for the same provider (or all)."""
        how = "pass next_page_token as given"
        data = self._keys.open(PAGE, self._owner, token, field="page_token", how=how, retired=_page_expired)
        at, seen, after, issued_for = data.get("at"), data.get("seen"), data.get("after"), data.get("provider")
        if not (_is_seconds(at) and _is_seconds(seen) and is_id(after) and (issued_for == "" or is_id(issued_for))):
            _reject("page_token", f"is not a token this service issued; {how}")
        assert isinstance(at, int | float) and isinstance(seen, int | float) and isinstance(after, str)
        assert isinstance(issued_for, str)
        if issued_for.lower() != provider.lower():
            wanted = f"provider {quoted(issued_for)}" if issued_for else "every provider (empty provider)"
            _reject("page_token", f"was issued for {wanted}; pass the same provider with it")
        return float(at), float(seen), after

    # -- WatchBatch ----------------------------------------------------------------------------------------------
    def resume(self, batch_id: str, rev: int) -> str:
        return self._keys.seal(WATCH, self._owner, {"batch": batch_id, "rev": rev})

    def resume_rev(self, token: str, batch_id: str) -> int:
        """The revision a WatchBatch resume_token was issued after, for the same batch."""
        how = "pass an event's resume_token as given"
        data = self._keys.open(
            WATCH, self._owner, token, field="resume_token", how=how, retired=lambda: resume_expired(batch_id)
        )
        rev, issued_for = data.get("rev"), data.get("batch")
        if not (_is_revision(rev) and is_id(issued_for)):
            _reject("resume_token", f"is not a token this service issued; {how}")
        assert isinstance(rev, int) and isinstance(issued_for, str)
        if issued_for != batch_id:
            _reject("resume_token", f"was issued for batch {quoted(issued_for)}, not {quoted(batch_id)}")
        return rev

    # -- WatchBatches --------------------------------------------------------------------------------------------
    def many(self, position: ManyPosition, batch_ids: Sequence[str]) -> str:
        """A WatchBatches position: every revision up to its seq of the watched set was delivered, but perhaps
        those another replica saved just before it (see subscriptions/many.py)."""
        seal = {"seq": position.seq, "set": _set_digest(batch_ids), "at": round(position.at, 3), "by": position.by}
        return self._keys.seal(MANY, self._owner, seal)

    def many_position(self, token: str, batch_ids: Sequence[str]) -> ManyPosition:
        how = "pass an event's resume_token as given"
        data = self._keys.open(MANY, self._owner, token, field="resume_token", how=how, retired=_many_expired)
        seq, digest, at, by = data.get("seq"), data.get("set"), data.get("at", 0.0), data.get("by", "")
        if not (
            _is_revision(seq)
            and isinstance(digest, str)
            and _SET_DIGEST.fullmatch(digest)
            and _is_seconds(at)
            and isinstance(by, str)
            and _ORIGIN.fullmatch(by)
        ):
            _reject("resume_token", f"is not a WatchBatches token this service issued; {how}")
        assert isinstance(seq, int) and isinstance(at, int | float)
        if digest != _set_digest(batch_ids):
            _reject("resume_token", "was issued for other batch_ids: resume with the same batch_ids")
        return ManyPosition(seq, float(at), by)


def resume_expired(batch_id: str) -> ServiceError:
    return ServiceError(
        Code.FAILED_PRECONDITION,
        "RESUME_TOKEN_EXPIRED",
        f"The resume_token names a revision of batch {batch_id} this service does not hold (older than the "
        "revisions kept, from before its state was reset, or sealed by a token key since retired): start over with "
        "WatchBatch without a resume_token (its first event is a snapshot of the current state).",
        {"batch_id": batch_id},
    )


def _many_expired() -> ServiceError:
    return ServiceError(
        Code.FAILED_PRECONDITION,
        "RESUME_TOKEN_EXPIRED",
        "The resume_token was sealed by a token key this service has since retired: start over with WatchBatches "
        "without a resume_token (each batch's first event is a snapshot of its current state).",
    )


def _page_expired() -> ServiceError:
    return ServiceError(
        Code.FAILED_PRECONDITION,
        "PAGE_TOKEN_EXPIRED",
        "The page_token was sealed by a token key this service has since retired: list again from the first page "
        "(without a page_token).",
    )


def _reject(field: str, description: str) -> NoReturn:
    raise invalid_argument([FieldViolation(field, description)])


def _is_seconds(value: object) -> bool:
    """A JSON number (not a bool) of epoch seconds: NaN fails the comparison, a huge int compares exactly (no
    float conversion to overflow)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and -MAX_EPOCH_SECONDS <= value <= MAX_EPOCH_SECONDS
    )


def _is_revision(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_REVISION


def _set_digest(batch_ids: Sequence[str]) -> str:
    if not batch_ids:
        return "all"
    joined = "\n".join(sorted(set(batch_ids))).encode()
    return hashlib.sha256(joined).hexdigest()[:16]
