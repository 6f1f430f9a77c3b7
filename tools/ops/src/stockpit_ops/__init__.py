"""Operator tools: the demo and the `stockpit` command."""
