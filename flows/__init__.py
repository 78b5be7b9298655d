"""Prefect flows: they only wire the stage functions of tasks/ together."""
