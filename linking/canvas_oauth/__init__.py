"""Sign in with Canvas: a django-allauth OAuth2 provider that lets students sign in with their Canvas account.

Parents sign in with email and password; students get no portal password and need no email address.
"""
