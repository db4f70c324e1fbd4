"""Clocktower: a self-hosted scheduler for an application's background jobs."""

__version__ = "0.1.0"
