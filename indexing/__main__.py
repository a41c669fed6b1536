"""`python -m indexing`: the fashion-index command."""

from indexing.cli import main

raise SystemExit(main())
