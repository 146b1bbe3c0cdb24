"""clip-arena users hash NAME: a users-file line with the password hashed (read from stdin)."""

from __future__ import annotations

import argparse
import getpass
import sys

from clip_arena.core.errors import UserError


DESCRIPTION = """\
Manage the users file of serve --users (one name:password per line): print a line with the
password hashed."""
EXAMPLES = """\
examples:
  clip-arena users hash alice >> users.txt     # asks for the password"""

HASH_DESCRIPTION = """\
Print NAME:HASH (PBKDF2-SHA256) for the users file; the password is asked for on a terminal, else
read from the first line of stdin."""
HASH_EXAMPLES = """\
examples:
  clip-arena users hash alice >> users.txt
  clip-arena users hash alice < password.txt"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("users", help="manage the users file of `serve --users`",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    h = sub.add_parser("hash", help="print NAME:HASH for the users file; the password is read from stdin",
                       description=HASH_DESCRIPTION, epilog=HASH_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_argument("name")
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.core.auth import hash_password  # its sign-in guard imports asyncio

    name = args.name.strip()
    if not name or ":" in name:
        raise UserError("A user name must be non-empty and hold no ':'.")
    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UserError("The password is empty.")
    print(f"{name}:{hash_password(password)}")
    return 0
