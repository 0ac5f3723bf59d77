"""Leaderboard tables and the static site."""
