"""The password hasher: Argon2id with the parameters OWASP's Password Storage Cheat Sheet recommends.

Django's Argon2 defaults (100 MiB, 8 lanes) and its PBKDF2 (1,000,000 rounds of SHA-256) each cost a
sign-in 150 to 300 ms of CPU on a two-core school server, and sign-ins crowd every other page out in the
first week of school (bench/RESULTS.md, "The web"). OWASP's first configuration for Argon2id, 19 MiB of
memory, 2 passes, 1 lane, costs about 35 ms here; being memory-hard, it costs an attacker's GPUs more per
guess than PBKDF2 at any affordable number of rounds, which is why OWASP puts it first.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id, m=19 MiB, t=2, p=1. A hash made with other parameters is remade at the next sign-in."""

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
