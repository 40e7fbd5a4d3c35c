"""The leaderboard: an evaluation of every available potential on one scan set, ranked by smoothness.

``runner`` evaluates each candidate with BSCT (resumable, skipping the unavailable with how to
install them), ``report`` writes the ranked table as Markdown, HTML, CSV and JSON, ``commands``
is ``pesprobe leaderboard``.
"""
