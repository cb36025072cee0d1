"""The simulator's keys and users, as the real gateway keeps them: keys that can be deactivated, users that can be
blocked or deleted (observed on mozilla-ai/otari, GATEWAY-CONTRACT.md "Revocation, blocking, deletion").

- A deactivated key, or any key of a deleted user, answers 401 "API key is inactive" on every route.
- A blocked user's reads are served; its creates answer 403 "User '<id>' is blocked".
- A master-key create naming a user the gateway does not know (or deleted) answers 404 "User '<id>' not found".

Keys and users made at run time are test controls, like faults: they are not kept in the state file.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

# Keys that work out of the box (shown in the README): key -> its user (the key's id at the gateway: key-<user>).
DEFAULT_API_KEYS = {"sim-key-alice": "alice", "sim-key-bob": "bob"}
DEFAULT_MASTER_KEY = "sim-master-key"


class Refused(Exception):
    """A key the gateway does not take, with the status and detail it answers."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Key:
    id: str
    key: str
    user: str
    name: str | None = None
    active: bool = True
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, object]:
        """The gateway's key info (a subset of its fields; `key` itself only when made)."""
        return {
            "id": self.id,
            "key_name": self.name,
            "user_id": self.user,
            "is_active": self.active,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
        }


@dataclass
class User:
    id: str
    blocked: bool = False
    deleted: bool = False

    def to_json(self) -> dict[str, object]:
        return {"user_id": self.id, "blocked": self.blocked, "deleted": self.deleted}


@dataclass
class Accounts:
    master_key: str = DEFAULT_MASTER_KEY
    keys: dict[str, Key] = field(default_factory=dict)  # by key
    users: dict[str, User] = field(default_factory=dict)

    @classmethod
    def with_keys(cls, api_keys: dict[str, str], master_key: str = DEFAULT_MASTER_KEY) -> Accounts:
        """Accounts holding `api_keys` (key -> user), each key's id `key-<user>` (the first of a user's)."""
        accounts = cls(master_key=master_key)
        for key, user in api_keys.items():
            key_id = f"key-{user}" if f"key-{user}" not in {k.id for k in accounts.keys.values()} else None
            accounts.add_key(user, key=key, key_id=key_id)
        return accounts

    def add_key(self, user: str, *, key: str | None = None, key_id: str | None = None, name: str | None = None) -> Key:
        """A new active key of `user` (made if unknown, as the gateway's POST /keys does)."""
        self.users.setdefault(user, User(user))
        made = Key(key_id or secrets.token_hex(8), key or f"sim-key-{secrets.token_hex(12)}", user, name)
        self.keys[made.key] = made
        return made

    def key_by_id(self, key_id: str) -> Key | None:
        return next((k for k in self.keys.values() if k.id == key_id), None)

    def user_of(self, key: str) -> str:
        """The user whose key this is; Refused (401) for a key the gateway does not take."""
        found = self.keys.get(key)
        if found is None:
            raise Refused(401, "Invalid API key")
        user = self.users.get(found.user)
        if not found.active or user is None or user.deleted:
            raise Refused(401, "API key is inactive")
        return found.user

    def known_user(self, user: str) -> bool:
        found = self.users.get(user)
        return found is not None and not found.deleted

    def blocked(self, user: str) -> bool:
        found = self.users.get(user)
        return found is not None and found.blocked

    def users_with_keys(self) -> list[str]:
        return sorted({k.user for k in self.keys.values()})
