"""Moderator backends behind one protocol (base.Moderator). Each imports its runtime on first use."""

from prism_cli.moderators.base import Message, Moderator, Role

__all__ = ["Message", "Moderator", "Role"]
