"""The VLM attribute tier of `clip-arena prepare`: structured extraction by a vision-language model
through the OpenAI Batch API file format, on any OpenAI-compatible server.

requests.py builds and splits the request files, client.py talks to the server, state.py keeps every
batch's state on disk, parse.py turns output lines into checked answers and columns, and tier.py's
vlm_attributes (documented there) runs it all, resumably.
"""

from clip_arena.prepare.vlm.requests import FileLimits
from clip_arena.prepare.vlm.tier import vlm_attributes

__all__ = ["FileLimits", "vlm_attributes"]
