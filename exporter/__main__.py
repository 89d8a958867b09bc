"""The ``clevertap-export-exporter`` command: serve, or run one of the setup subcommands."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("send", "replay", "demo", "check-config", "forget"):
        from exporter import tools  # the server does not need the tools' imports

        return tools.main(args)
    from exporter.cli import serve

    return serve.run(args)


if __name__ == "__main__":
    sys.exit(main())
