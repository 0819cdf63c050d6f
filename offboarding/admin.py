"""Django admin for cases: read-only records; transitions only through the services.

django-fsm-2's `FSMAdminMixin` applies a transition on its plain button POST without
checking the transition's `permission`. Here every transition, by button or by form,
goes through `offboarding.services`, which checks the actor like any other caller.
"""

from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django_fsm.admin import FSMAdminMixin, FSMTransitionContext

from . import services, visibility
from .forms import STEP_FORMS, WithdrawForm
from .models import Case, CaseEvent, EvidenceFile
from .money import admin as money_admin  # noqa: F401  (registers the payouts ledger's admin)
from .process import STEPS

TRANSITION_STEP = {step.transition: step for step in STEPS}


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    fields = (
        "created_at",
        "kind",
        "step_number",
        "from_state",
        "to_state",
        "actor",
        "data",
        "note",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(FSMAdminMixin, admin.ModelAdmin):
    fsm_fields = ["state"]
    list_display = ("id", "partner", "state", "step_due_at", "offboard_date", "opened_at")
    list_filter = ("state",)
    list_select_related = ("partner",)
    # "N of 105,000 total" would count every case on every filtered page.
    show_full_result_count = False
    search_fields = ("partner__display_name", "partner__record_id")
    inlines = [CaseEventInline]

    def get_queryset(self, request):
        return visibility.visible_cases(request.user, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False  # cases are opened from the partner page, through the service

    def has_delete_permission(self, request, obj=None):
        return False  # cases are history; they are never deleted

    def save_model(self, request, obj, form, change):
        """Every field is read-only here: nothing is written but through the services."""

    def get_fsm_label(self, transition):
        step = TRANSITION_STEP.get(transition.name)
        return f"Step {step.number}: {step.title}" if step else transition.name.capitalize()

    def get_fsm_transition_form(self, transition):
        if transition.name == "withdraw":
            return WithdrawForm
        step = TRANSITION_STEP.get(transition.name)
        return STEP_FORMS[step.number] if step else None

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None):
        """Refuse the library's direct path: a transition needs its form and the service."""
        self.message_user(
            request,
            f"'{transition_name}' is applied through its form, which checks who you are.",
            level=messages.ERROR,
        )
        return False

    def fsm_transition_view(self, request, object_id, transition_name, **kwargs):
        case = self.get_object(request, object_id)
        if case is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = redirect("admin:offboarding_case_change", object_id=case.pk)
        step = TRANSITION_STEP.get(transition_name)
        if step is None and transition_name != "withdraw":
            self.message_user(request, "No such transition.", level=messages.ERROR)
            return change_url
        form_class = WithdrawForm if step is None else STEP_FORMS[step.number]
        if request.method == "POST":
            form = form_class(request.POST, request.FILES, case=case)
            if form.is_valid():
                try:
                    if step is None:
                        services.withdraw_case(
                            actor=request.user,
                            case_id=case.pk,
                            expected_state=form.cleaned_data["expected_state"],
                            reason=form.cleaned_data["reason"],
                        )
                    else:
                        services.complete_step(
                            actor=request.user,
                            case_id=case.pk,
                            step_number=step.number,
                            expected_state=form.cleaned_data["expected_state"],
                            data=form.step_data(),
                            note=form.cleaned_data.get("note", ""),
                            evidence=form.cleaned_data.get("evidence", []),
                        )
                except services.ActionRefused as refusal:
                    self.message_user(request, str(refusal), level=messages.ERROR)
                    return change_url
                self.message_user(request, "Done.", level=messages.SUCCESS)
                return change_url
        else:
            form = form_class(case=case)
        label = f"Step {step.number}: {step.title}" if step else "Withdraw"
        context = self.admin_site.each_context(request) | {
            "opts": self.model._meta,
            "original": case,
            "transition": FSMTransitionContext(
                name=transition_name, label=label, help_text=step.summary if step else ""
            ),
            "transition_form": form,
        }
        return render(
            request,
            "admin/offboarding/transition_form.html",
            context,
            status=400 if request.method == "POST" else 200,
        )


@admin.register(EvidenceFile)
class EvidenceFileAdmin(admin.ModelAdmin):
    list_display = ("original_name", "event", "size", "uploaded_at")
    readonly_fields = ("event", "file", "original_name", "size", "uploaded_at")

    def get_queryset(self, request):
        visible = visibility.visible_cases(request.user).values("pk")
        return super().get_queryset(request).filter(event__case__in=visible)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # append-only: shown, never saved again

    def has_delete_permission(self, request, obj=None):
        return False
