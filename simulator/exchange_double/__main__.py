"""``python -m exchange_double`` is the same as the ``exchange-double`` command."""

from exchange_double.cli import main

raise SystemExit(main())
