"""CLIP Arena web app: `python app.py` serves the bundled demo, and Hugging Face Spaces runs this file.

It is the Space's entry, not an installed module: the app is clip_arena.webapp, and
`python app.py ARGS` is `clip-arena serve ARGS`.
"""

import sys

from clip_arena.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
