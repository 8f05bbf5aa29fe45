"""Print, one per line, the shell commands of every fenced block in a Markdown file that follows
a `<!-- ci: run -->` marker. CI runs exactly these, so the README cannot drift from what works."""

from __future__ import annotations

import re
import sys
from pathlib import Path

BLOCK = re.compile(r"<!-- ci: run -->\s*```(?:bash|sh|console)?\n(.*?)```", re.S)


def commands(text: str) -> list[str]:
    out = []
    for block in BLOCK.findall(text):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line.removeprefix("$ "))
    return out


if __name__ == "__main__":
    print("\n".join(commands(Path(sys.argv[1]).read_text())))
