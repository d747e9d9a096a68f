"""Gateway keys, teams, limits, budgets and the spend ledger.

    secret.py    making keys, hashing them, comparing hashes in constant time
    input.py     what the admin API accepts, validated (400 naming the field)
    keyring.py   the in-memory index the auth stage reads; writes through to the KeyStore
    accounts.py  usage per key and team; admission with reservation, settling on completion
    ledger.py    one spend record per finished request: journal now, store in batches
    journal.py   each process's own slot of the spend journal; a dead process's slot adopted at start
    governance.py  the pieces wired together for a router (gateway or library)

The middlewares that use them are :mod:`stellwerk.pipeline.auth` and :mod:`stellwerk.pipeline.limits`.
"""

from .accounts import Accounts, Ticket
from .keyring import MASTER, Keyring
from .ledger import SpendLedger

__all__ = ["MASTER", "Accounts", "Keyring", "SpendLedger", "Ticket"]
