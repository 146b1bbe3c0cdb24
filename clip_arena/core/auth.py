"""Who may open the app: one `--auth USER:PASS` pair and/or a users file, one `name:password` per
line (blank lines and `# comments` allowed). A password may be stored hashed, as written by
`clip-arena users hash NAME`: `pbkdf2_sha256$ITERATIONS$SALT$HASH` (base64), so the file need
not hold it in clear. The login name is the annotator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from clip_arena.core.errors import UserError

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
    """The callable Gradio's launch(auth=...) takes: (name, password) -> allowed."""

    def __init__(self, users: dict[str, str]):
        self.users = users

    @classmethod
    def from_settings(cls, auth: str | None, users_file: str | None) -> "Users | None":
        users = read_users(users_file) if users_file else {}
        if auth:
            name, password = parse_pair(auth)
            users[name] = password
        return cls(users) if users else None

    def __call__(self, name: str, password: str) -> bool:
        stored = self.users.get((name or "").strip())
        if stored is None:
            check_password(password or "", hash_password("", iterations=1))  # same work either way
            return False
        return check_password(password or "", stored)

    def __len__(self) -> int:
        return len(self.users)
