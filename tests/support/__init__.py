"""Plain helpers shared by the test folders: databases, API requests, projects, processes,
browser pages, a planted crowd. Fixtures are not here but in the ``conftest.py`` files
(``tests/conftest.py`` for those that more than one folder uses). Each module imports only
what it needs, so ``tests.support.crowd`` runs where only numpy is installed."""
