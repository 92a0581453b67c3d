"""``python -m agentmem_core``: the ``agentmem`` command line (see :mod:`agentmem_core.cli`)."""

from agentmem_core.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
