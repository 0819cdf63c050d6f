"""What the navigation bar offers, decided by offboarding.access (the template only asks)."""

from . import access


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show_car_console": False}
    return {"show_car_console": access.can_open_car_console(user)}
