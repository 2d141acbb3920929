"""Thin typer front end: parse, call one workflow, print. Nothing else imports this package."""
