"""``python -m topo`` runs the ``topo`` command."""

from topo.cli import main

raise SystemExit(main())
