"""The rules of a shared deployment (a Hugging Face Space, or `serve --hosted`), as plain functions:
who an annotator is, how big an upload may be, and what the page says about where votes are kept."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings

HOSTED_MAX_UPLOAD = "10mb"  # a shared machine takes smaller files than a local one (50mb)
HOSTED_MAX_BATCH_ROWS = 5_000  # rows of one web batch on a shared machine (none locally)
OAUTH, LOGIN, TYPED, NOBODY = "oauth", "login", "typed", "nobody"


def is_hosted(settings: Settings) -> bool:
    return bool(settings.hosted or os.environ.get("SPACE_ID"))


def behind_proxy() -> bool:
    """Whether a proxy stands in front and appends the client's address to X-Forwarded-For: on a
    Space, or where the owner says so (CLIP_ARENA_BEHIND_PROXY=1). Elsewhere the header is the
    client's own words and is not believed."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("CLIP_ARENA_BEHIND_PROXY", "").strip().lower() in {
        "1", "true", "yes", "on"}


def oauth_enabled() -> bool:
    """The Space's README sets `hf_oauth: true`: Spaces then set OAUTH_CLIENT_ID (and a secret)."""
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def identity(settings: Settings) -> str:
    """How annotators are told apart: Hugging Face login, the app's own login (--auth, users file),
    a typed name (locally, or hosted when the owner allows anonymous votes), or nobody may vote."""
    if oauth_enabled():
        return OAUTH
    if settings.auth or settings.users_file:
        return LOGIN
    anonymous = settings.allow_anonymous if settings.allow_anonymous is not None else not is_hosted(settings)
    return TYPED if anonymous else NOBODY


# Said once, in the arena and in serve's startup lines, where a hosted arena has no sign-in.
ENABLE_VOTING = ("turn on Hugging Face sign-in (`hf_oauth: true` in the Space's README front matter: the Space "
                 "then sets OAUTH_CLIENT_ID), give a users file (`--users FILE` or CLIP_ARENA_USERS), or allow "
                 "typed names (`--allow-anonymous` or CLIP_ARENA_ALLOW_ANONYMOUS=1)")
VOTING_OFF = ("**Voting is off here.** This arena is hosted, so it takes votes only from signed-in annotators, "
              "and no sign-in is set up. The owner can enable voting: " + ENABLE_VOTING + ".")


@dataclass(frozen=True)
class VotingTexts:
    """What the arena says about who votes, for each way of naming annotators: each line true
    before anyone has signed in."""

    name_info: str | None  # under the name box
    status: str  # the status line before Start
    users_line: str  # serve's startup line


def voting_texts(mode: str, users: int = 0) -> VotingTexts:
    if mode == OAUTH:
        return VotingTexts("Sign in with Hugging Face (the button above): your Hugging Face name is used.",
                           "Sign in with Hugging Face, then press **Start**.",
                           "users: Hugging Face sign-in (the Hugging Face name is the annotator)")
    if mode == LOGIN:
        return VotingTexts("Your login name is used.", "Press **Start** to vote under your login name.",
                           f"users: {users} (the login name is the annotator)")
    if mode == NOBODY:
        return VotingTexts("Voting is off: no sign-in is set up.", VOTING_OFF,
                           "users: nobody can vote: hosted with no sign-in set up; to enable voting, " + ENABLE_VOTING)
    return VotingTexts(None, "Enter your name and press **Start** (or Enter).",
                       "users: no login (annotators type a name)")


def owners_only(settings: Settings) -> bool:
    """Whether Results, exports and Explore belong to owners alone: where annotators sign in or the
    app is shared. Locally with typed names the person at the keyboard is the owner."""
    return identity(settings) != TYPED or is_hosted(settings)


def owners(settings: Settings) -> set[str]:
    """--admins (CLIP_ARENA_ADMINS), and on a Space with Hugging Face sign-in its owner (SPACE_AUTHOR_NAME)."""
    names = set(settings.admins)
    if oauth_enabled() and os.environ.get("SPACE_AUTHOR_NAME"):
        names.add(os.environ["SPACE_AUTHOR_NAME"])
    return names


def signed_in_name(request) -> str | None:
    """Who sent a request: the app's own login name, or the Hugging Face sign-in's user name (from
    the session Gradio keeps; None once it expired). Never a typed name: anyone can type one."""
    login = getattr(request, "username", None)
    if login:
        return login
    try:
        info = request.session.get("oauth_info") or {}
    except Exception:  # noqa: BLE001 - no session middleware (no OAuth): nobody signed in that way
        return None
    expires = info.get("expires_at")
    if expires is not None and expires <= datetime.now(timezone.utc).timestamp():
        return None
    return (info.get("userinfo") or {}).get("preferred_username") or None


def is_owner(settings: Settings, request) -> bool:
    if not owners_only(settings):
        return True
    name = signed_in_name(request) if request is not None else None
    return bool(name) and name in owners(settings)


OWNERS_ONLY = ("Results, exports and Explore are for the arena's owners here (`--admins`, or the Space's owner); "
               "annotators see their own progress in the Arena tab.")


def explore_enabled(settings: Settings) -> bool:
    """Explore lists every method's results for any image, so an annotator could search a round's
    query and learn which side is which: on by default only where nobody signs in to vote and the app
    is not hosted (the owner alone, locally); --explore / --no-explore decide otherwise."""
    if settings.explore is not None:
        return settings.explore
    return identity(settings) == TYPED and not is_hosted(settings)


EXPLORE_OFF = ("Explore is off here: it shows which results each method returns, which would tell annotators "
               "which side is which in the arena. Start the app with `--explore` to turn it on anyway.")


def annotator_name(mode: str, typed: str, login: str | None, profile) -> str:
    """The annotator's name under `mode`; raises UserError (one sentence) when they may not vote."""
    if mode == OAUTH:
        name = getattr(profile, "username", None)
        if not name:
            raise UserError("Sign in with Hugging Face (the button above) to vote.")
        return name
    if mode == LOGIN:
        if not login:
            raise UserError("Sign in to vote.")
        return login
    if mode == NOBODY:
        raise UserError("Voting is off here: this arena takes votes only from signed-in annotators, and no sign-in "
                        "is set up.")
    return typed


def max_upload(settings: Settings) -> str:
    """The upload cap: as configured, else smaller when hosted."""
    if os.environ.get("CLIP_ARENA_MAX_UPLOAD") or settings.max_upload != "50mb" or not is_hosted(settings):
        return settings.max_upload
    return HOSTED_MAX_UPLOAD


# Captions one Similarity call may score, and their characters in all: locally, then hosted.
MAX_CAPTIONS, HOSTED_MAX_CAPTIONS = 1_000, 100
MAX_CAPTION_CHARS, HOSTED_MAX_CAPTION_CHARS = 100_000, 10_000


def caption_caps(settings: Settings) -> tuple[int, int]:
    """(captions, characters) one web Similarity call may carry: a call is not a batch (a batch has
    its own cap, and the command line none)."""
    if is_hosted(settings):
        return HOSTED_MAX_CAPTIONS, HOSTED_MAX_CAPTION_CHARS
    return MAX_CAPTIONS, MAX_CAPTION_CHARS


def max_batch_rows(settings: Settings) -> int | None:
    """Rows one web batch may have: as configured (CLIP_ARENA_MAX_BATCH_ROWS), else 5,000 when
    hosted and no cap locally. The command line is never capped."""
    if settings.max_batch_rows > 0:
        return settings.max_batch_rows
    return HOSTED_MAX_BATCH_ROWS if is_hosted(settings) else None


def storage_notice(target, hosted: bool, now: datetime | None = None) -> str:
    """What the page says about where votes are kept (Markdown); empty when running locally with
    no target (the votes file is the user's own)."""
    if target is None:
        if not hosted:
            return ""
        return ("**Warning: votes here are ephemeral.** They are kept only on this machine's disk and are lost "
                "when the Space restarts; the owner can keep them in a dataset repo or a mounted folder "
                "(CLIP_ARENA_VOTE_TARGET).")
    minutes = target.every_min
    window = ("each vote is pushed as it is cast, so a restart loses none" if minutes <= 0 else
              f"pushed every {minutes:g} minute{'s' if minutes != 1 else ''}: a restart can lose up to the last "
              f"{minutes:g} minute{'s' if minutes != 1 else ''} of votes")
    if target.last_push is None:
        last = "no push yet"
    else:
        ago = int(((now or datetime.now(timezone.utc)) - target.last_push).total_seconds() // 60)
        last = f"last push {target.last_push:%H:%M} UTC ({'just now' if ago < 1 else f'{ago} min ago'})"
    error = f"; **the last push failed** ({target.last_error})" if target.last_error else ""
    return f"Votes are kept in {target.describe()}, {window}; {last}{error}."
