"""The cloud subcommands: setup, train, publish, search (thin wrappers over the job modules)."""
