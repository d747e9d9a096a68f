"""The PostgreSQL store (``server.store: postgresql://...``): keys, teams, the spend ledger, configuration
versions and stored responses, shared by every replica. Needs ``pip install 'stellwerk[postgres]'``."""

from .store import PostgresStore

__all__ = ["PostgresStore"]
