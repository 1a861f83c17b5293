"""The label store's accounts: names, scrypt-hashed passwords, the admin role, quotas.

Functions over a `LabelDB` (`afm_align/label_db.py`); `LabelStore` exposes them as methods. A password
is stored as scrypt(password, per-user 16-byte salt); `check_password` costs the same for an unknown
name (no user enumeration by timing). `credential_stamp(name)` changes with every password change;
the app ties sessions to it, so a password change (from any process) revokes that user's sessions.
`check_name` and `check_password_rules` validate without touching the file, so a command can refuse
bad input before it creates a run folder or a store.

Run: `afm-align annotators add alice --admin --run demo` (then `annotators passwd|quota|list`).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import time

from afm_align.errors import UserError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}
MIN_PASSWORD = 8


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)


def check_name(name) -> str:
    """`name` if it is a valid annotator name, else a one-line UserError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"annotator name '{name}' must be 1-32 letters, digits, '.', '_' or '-'")
    return name


def check_password_rules(password) -> str:
    """`password` if it is acceptable (at least MIN_PASSWORD characters), else a one-line UserError."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"a password must have at least {MIN_PASSWORD} characters")
    return password


def add_user(db, name: str, password: str, admin: bool = False, quota: int | None = None) -> None:
    """Create an account; the password is stored as scrypt(password, per-user salt)."""
    check_name(name)
    check_password_rules(password)
    quota = quota if quota and quota > 0 else None      # 0 or less: no quota, as `set_user` reads it
    salt = os.urandom(16)
    with db.tx() as con:
        if con.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
            raise UserError(f"annotator '{name}' already exists")
        con.execute("INSERT INTO users VALUES (?,?,?,?,?,?)",
                    (name, salt, _hash(password, salt), int(admin), quota, time.time()))


def check_password(db, name: str, password: str) -> bool:
    """True only for an existing user and the right password (constant-time comparison)."""
    with db.connect() as con:
        row = con.execute("SELECT salt, hash FROM users WHERE name=?", (name,)).fetchone()
    if row is None:
        _hash(password or "", b"0" * 16)   # same cost either way: no user enumeration by timing
        return False
    return hmac.compare_digest(_hash(password or "", row["salt"]), row["hash"])


def credential_stamp(db, name: str) -> str | None:
    """A digest that changes with every password change of `name`; None for an unknown user."""
    with db.connect() as con:
        row = con.execute("SELECT salt, hash FROM users WHERE name=?", (name,)).fetchone()
    return None if row is None else hashlib.sha256(bytes(row["salt"]) + bytes(row["hash"])).hexdigest()


def user(db, name: str) -> dict:
    """{name, admin, quota}; an unknown user is a UserError."""
    with db.connect() as con:
        row = con.execute("SELECT name, admin, quota FROM users WHERE name=?", (name,)).fetchone()
    if row is None:
        raise UserError(f"unknown annotator '{name}'")
    return {"name": row["name"], "admin": bool(row["admin"]), "quota": row["quota"]}


def users(db) -> list[dict]:
    with db.connect() as con:
        rows = con.execute("SELECT name, admin, quota FROM users ORDER BY name").fetchall()
    return [{"name": r["name"], "admin": bool(r["admin"]), "quota": r["quota"]} for r in rows]


def set_user(db, name: str, *, password: str | None = None, quota: int | None = None,
             admin: bool | None = None) -> None:
    """Change an existing user's password, quota (0 or less: none) or role."""
    user(db, name)
    if password is not None:
        check_password_rules(password)
    with db.tx() as con:
        if password is not None:
            salt = os.urandom(16)
            con.execute("UPDATE users SET salt=?, hash=? WHERE name=?", (salt, _hash(password, salt), name))
        if quota is not None:
            con.execute("UPDATE users SET quota=? WHERE name=?", (quota if quota > 0 else None, name))
        if admin is not None:
            con.execute("UPDATE users SET admin=? WHERE name=?", (int(admin), name))
