"""Subcommands that read and write application files: prepare, sample, predict, run."""

from __future__ import annotations
