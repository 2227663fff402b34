"""``python -m crew``: the ``crew`` command."""

from .cli import main

raise SystemExit(main())
