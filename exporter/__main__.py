"""``python -m exporter``: the same as the ``clevertap-export-exporter`` command."""

from exporter.cli import main

raise SystemExit(main())
