"""Multi-step writes, named ``<thing>_<verb>``, each in one transaction with its audit event."""
