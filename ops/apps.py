from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


class OpsConfig(AppConfig):
    """Operations: the app's database role, evidence checks, backup and restore."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        from . import grants, owner_migrate

        # Every app's pre_migrate: the first one for the owner switches (idempotent).
        pre_migrate.connect(owner_migrate.default_is_owner, dispatch_uid="partnerops-owner")
        # sender=self: once per `migrate`, after every app's tables exist (ops is listed
        # after the apps whose tables it grants).
        post_migrate.connect(grants.grant_after_migrate, sender=self)
