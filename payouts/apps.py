from django.apps import AppConfig
from django.core import checks


class PayoutsConfig(AppConfig):
    name = "payouts"
    verbose_name = "Payouts"

    def ready(self):
        checks.register(check_configured_currencies)


def check_configured_currencies(app_configs=None, **kwargs):
    """`manage.py check` (and every start) refuses a currency the ledger cannot hold."""
    from django.core.exceptions import ImproperlyConfigured

    from .money import supported_currencies

    try:
        supported_currencies()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="payouts.E001")]
    return []
