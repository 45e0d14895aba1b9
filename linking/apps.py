from django.apps import AppConfig


class LinkingConfig(AppConfig):
    name = "linking"
    verbose_name = "Linking parents to students"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.mfa.signals import authenticator_added
        from django.contrib.auth.signals import user_logged_in

        from linking.languages import language_restore_on_sign_in
        from linking.staff.middleware import record_activation_as_second_factor

        authenticator_added.connect(record_activation_as_second_factor, dispatch_uid="staff-mfa-activation")
        user_logged_in.connect(language_restore_on_sign_in, dispatch_uid="saved-language-on-sign-in")
