from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .roles import remember_roles
        from .security import stamp_session

        user_logged_in.connect(remember_roles, dispatch_uid="partnerops-remember-roles")
        # The session's start and last request, from which its time limits count.
        user_logged_in.connect(stamp_session, dispatch_uid="partnerops-stamp-session")
