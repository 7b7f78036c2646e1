"""Rewrite the rule table in README.md from the catalogue (`sftgate rules --format markdown`)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from sftgate.runners.cli.main import main

README = Path(__file__).resolve().parent.parent / "README.md"


def run() -> None:
    out = io.StringIO()
    main(["rules", "--format", "markdown"], stdout=out)
    text = README.read_text(encoding="utf-8")
    new = re.sub(r"(<!-- rules:start -->\n).*?(<!-- rules:end -->)", lambda m: m.group(1) + out.getvalue() + m.group(2),
                 text, flags=re.S)
    README.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    run()
