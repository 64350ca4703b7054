"""The ``vislab`` command line: ``vislab TASK MODE --options`` (click).

Each task's commands live in ``cli/<task>.py`` as a click group named ``group``; ``main.py`` adds them.
Config-driven commands are built from the task's config dataclass by :func:`options.config_command`.
"""
