"""`python -m bot`: the fashion-bot command."""

from bot.main import main

raise SystemExit(main())
