"""Who may open the app: one `--auth USER:PASS` pair and/or a users file, one `name:password` per
line (blank lines and `# comments` allowed). A password may be stored hashed, as written by
`clip-arena users hash NAME`: `pbkdf2_sha256$ITERATIONS$SALT$HASH` (base64), so the file need
not hold it in clear. The login name is the annotator."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from pathlib import Path

from clip_arena.core.errors import UserError
from clip_arena.core.login_guard import CheckQueue

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Compare in constant time, against a hash or a password in clear."""
    parts = stored.split("$")
    if len(parts) == 4 and parts[0] == SCHEME and parts[1].isdigit():
        try:
            salt, digest = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
        except ValueError:
            return False
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(parts[1]))
        return hmac.compare_digest(candidate, digest)
    return hmac.compare_digest(password.encode(), stored.encode())


def parse_pair(pair: str, where: str = "--auth") -> tuple[str, str]:
    name, sep, password = pair.partition(":")
    name = name.strip()
    if not sep or not name or not password:
        raise UserError(f"{where} must be NAME:PASSWORD.")
    return name, password


def read_users(path: str | Path) -> dict[str, str]:
    """{name: stored password} from a users file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise UserError(f"Cannot read the users file {path}: {err.strerror or err}.") from err
    except UnicodeDecodeError as err:
        raise UserError(f"The users file {path} is not UTF-8 text.") from err
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, password = parse_pair(line.rstrip("\r\n"), f"Line {number} of {path}")
        if name in users:
            raise UserError(f"Line {number} of {path}: user {name!r} is listed twice.")
        users[name] = password
    if not users:
        raise UserError(f"The users file {path} lists no user.")
    return users


class Users:
    """Who may sign in. Gradio's launch(auth=users.verify): a coroutine function, so Gradio awaits
    it and the check runs off the event loop (core.login_guard). Not itself callable: Gradio treats
    any callable as a plain function, and an async __call__ would return a (truthy) coroutine."""

    def __init__(self, users: dict[str, str]):
        self.users = users
        self.queue = CheckQueue()

    @classmethod
    def from_settings(cls, auth: str | None, users_file: str | None) -> "Users | None":
        users = read_users(users_file) if users_file else {}
        if auth:
            name, password = parse_pair(auth)
            users[name] = password
        return cls(users) if users else None

    def check(self, name: str, password: str) -> bool:
        """The same work whatever the name: one PBKDF2 at the default rounds for an unknown name
        or a password kept in clear, as for a hashed one."""
        stored = self.users.get(name)
        if stored is None or not stored.startswith(SCHEME + "$"):
            check_password(password, _dummy_hash())  # the work a hashed check does
        return stored is not None and check_password(password, stored)

    async def verify(self, name: str, password: str) -> bool:
        """Limits on failures are applied before this, by core.login_guard.LoginGuard."""
        allowed = await self.queue.run(self.check, (name or "").strip(), password or "")
        if allowed is None:  # too busy to check: refused, and counted against no name or client
            from fastapi import HTTPException

            raise HTTPException(status_code=503, detail="Too many sign-ins at once; try again in a few seconds.")
        return allowed

    def __len__(self) -> int:
        return len(self.users)


@functools.cache
def _dummy_hash() -> str:
    """A hash at the default rounds of a random password, made once: the work of a real check."""
    return hash_password(secrets.token_urlsafe(16))
