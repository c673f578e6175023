"""``crackseg`` subcommands provided by the training stage."""
