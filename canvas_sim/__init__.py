"""A Canvas LMS simulator: its own process and store, behaving like Canvas on the wire.

See ``../shared/canvas-contract.md`` (the contract) and README's "The Canvas simulator".
"""
