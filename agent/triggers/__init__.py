"""Triggers: the verified webhook listener, its inbox, rules that act on events, and schedules.

Modules: ``server`` (Starlette app), ``inbox`` (SQLite), ``payload`` (body validation),
``rules``/``actions``/``media``/``worker`` (what events do), ``cron``/``schedules`` (timers),
``listener`` (assembly, and an in-thread listener for the TUI), ``cli`` (the commands).
"""
