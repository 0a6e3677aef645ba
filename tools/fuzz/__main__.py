"""``python -m shc.tools.fuzz``: :func:`shc.tools.fuzz.cli.main`."""

from shc.tools.fuzz.cli import main

raise SystemExit(main())
