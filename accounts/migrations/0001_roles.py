from django.contrib.auth.management import create_permissions
from django.db import migrations

# The roles and their permissions as they were when this migration was written, frozen
# here: a migration must do the same thing whenever it runs, so it reads no live code.
# A later change to accounts.roles.ROLE_PERMISSIONS needs a new data migration with the
# new lists (tests/test_permissions.py compares the two).
ROLE_PERMISSIONS = {
    "CAM": (
        "partners.view_partner",
        "offboarding.view_case",
        "offboarding.perform_cam_steps",
        "offboarding.withdraw_case",
    ),
    "Sales Ops": (
        "partners.view_partner",
        "partners.view_all_partners",
        "offboarding.view_case",
        "offboarding.view_all_cases",
        "offboarding.perform_sales_ops_steps",
    ),
    "CAR": (
        "partners.view_partner",
        "partners.view_all_partners",
        "offboarding.view_case",
        "offboarding.view_all_cases",
        "offboarding.perform_car_steps",
        "payouts.view_payout",
        "payouts.view_payment",
    ),
    "Portal admin": (
        "partners.view_partner",
        "partners.view_all_partners",
        "offboarding.view_case",
        "offboarding.view_all_cases",
        "offboarding.perform_portal_admin_steps",
    ),
    "Partner-ops manager": (
        "partners.view_partner",
        "partners.view_all_partners",
        "offboarding.view_case",
        "offboarding.view_all_cases",
        "offboarding.withdraw_case",
        "payouts.view_payout",
        "payouts.view_payment",
    ),
}


def create_roles(apps, schema_editor):
    # Permissions are otherwise created after the whole migrate run (post_migrate); the
    # groups below need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        permissions = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permissions.append(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("partners", "0001_initial"),
        ("payouts", "0001_initial"),
        ("offboarding", "0001_initial"),
        ("notifications", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
