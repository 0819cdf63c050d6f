"""Bootstrap 5 form markup written in Python: `{{ form|bootstrap_form }}`.

It gives what `{{ form|crispy }}` gives with crispy-bootstrap5 — the same elements,
attributes, classes and text — for the widgets this app uses. crispy draws a field through
about ten templates and Django's widget templates; on the case page, where CAR sees five
forms, that took 9 ms of a 45 ms page (`make bench`). Here a field costs a few string
operations. A form with a widget not handled here (a MultiWidget, a widget with its own
template, a file input showing a stored file) is drawn by crispy itself, and
tests/test_form_html.py compares every form of the app with crispy's markup, empty and
with errors.
"""

from html import escape

from crispy_forms.templatetags.crispy_forms_filters import as_crispy_form
from django import forms, template
from django.conf import settings
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

register = template.Library()

# Django's widget templates that draw one <input>: their markup is input.html's.
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in (
        "input",
        "text",
        "number",
        "email",
        "url",
        "password",
        "date",
        "datetime",
        "time",
        "hidden",
        "checkbox",
        "search",
        "tel",
        "color",
    )
)
CHOICE_TEMPLATES = frozenset(
    {"django/forms/widgets/radio.html", "django/forms/widgets/checkbox_select.html"}
)
FILE_TEMPLATES = frozenset(
    {"django/forms/widgets/file.html", "django/forms/widgets/clearable_file_input.html"}
)
OTHER_TEMPLATES = frozenset(
    {"django/forms/widgets/textarea.html", "django/forms/widgets/select.html"}
)
HANDLED_TEMPLATES = INPUT_TEMPLATES | CHOICE_TEMPLATES | FILE_TEMPLATES | OTHER_TEMPLATES


def handles(form) -> bool:
    """Whether every field of `form` has a widget this module draws as crispy would."""
    return getattr(form, "helper", None) is None and all(
        _handled(field.widget) for field in form.fields.values()
    )


def _handled(widget) -> bool:
    if widget.template_name not in HANDLED_TEMPLATES or isinstance(widget, forms.MultiWidget):
        return False
    # A <select> whose options have a template of their own is not drawn here.
    return widget.template_name != "django/forms/widgets/select.html" or (
        widget.option_template_name == "django/forms/widgets/select_option.html"
    )


class Unhandled(Exception):
    """Markup this module does not write; crispy writes the form."""


@register.filter(name="bootstrap_form")
def bootstrap_form(form):
    if not handles(form):
        return as_crispy_form(form)
    try:
        return _form(form)
    except Unhandled:
        return as_crispy_form(form)


def _form(form):
    parts = []
    errors = form.non_field_errors()
    if errors:
        items = "".join(f"<li>{conditional_escape(error)}</li>" for error in errors)
        parts.append(
            f'<div class="alert alert-block alert-danger"><ul class="m-0">{items}</ul></div>'
        )
    parts.extend(_field(bound) for bound in form)
    return mark_safe(" ".join(parts))  # noqa: S308 - every value is escaped where it is written


# ------------------------------------------------------------------------------ a field


def _field(bound) -> str:
    widget = bound.field.widget
    if widget.is_hidden:
        return _widget(bound, {})
    template_name = widget.template_name
    is_checkbox = isinstance(widget, forms.CheckboxInput)
    is_choices = template_name in CHOICE_TEMPLATES
    errors = bound.errors
    required = bound.field.required
    label = bound.label
    css = conditional_escape(bound.css_classes())
    out = []
    if is_checkbox:
        out.append('<div class="mb-3">')
    wrapper = "form-check" if is_checkbox else "mb-3"
    out.append(
        f'<div id="div_{conditional_escape(bound.auto_id)}" class="{wrapper}'
        f'{" " + css if css else ""}">'
    )
    fieldset = False
    if label and not is_checkbox:
        fieldset = bound.use_fieldset
        tag = "legend" if fieldset else "label"
        if fieldset:
            described = conditional_escape(bound.aria_describedby)
            out.append(f'<fieldset aria-describedby="{described}">' if described else "<fieldset>")
        for_id = conditional_escape(bound.id_for_label)
        for_attr = f'for="{for_id}" ' if for_id else ""
        out.append(
            f"<{tag} {for_attr}"
            f'class="form-label{" requiredField" if required else ""}'
            f'{" fs-6" if fieldset else ""}">'
            f"{conditional_escape(label)}{_asterisk(required)}</{tag}>"
        )
    if is_choices:
        out.append(_choices(bound, errors))
    elif is_checkbox:
        out.append(_widget(bound, _crispy_class(widget, "form-check-input", errors)))
        out.append(
            f'<label for="{conditional_escape(bound.id_for_label)}" class="form-check-label'
            f'{" requiredField" if required else ""}">{conditional_escape(label)}'
            f"{_asterisk(required)}</label>"
        )
        out.append(_errors_and_help(bound, errors))
    elif template_name in FILE_TEMPLATES:
        out.append(_file(bound, errors))
    else:
        base = "form-select" if isinstance(widget, forms.Select) else "form-control"
        out.append(_widget(bound, _crispy_class(widget, base, errors)))
        out.append(_errors_and_help(bound, errors))
    if fieldset:
        out.append("</fieldset>")
    out.append("</div>")
    if is_checkbox:
        out.append("</div>")
    return " ".join(part for part in out if part)


def _asterisk(required: bool) -> str:
    return '<span class="asteriskField">*</span>' if required else ""


def _crispy_class(widget, classes: str, errors) -> dict:
    """The class crispy's {% crispy_field %} gives the widget: its own class, the widget's
    kind ("textinput", "select", ...) and the Bootstrap classes, without changing the
    widget's attrs as crispy does."""
    kind = widget.__class__.__name__.lower()
    kind = getattr(settings, "CRISPY_CLASS_CONVERTERS", {}).get(kind, kind)
    css = widget.attrs.get("class", "")
    if css:
        if css.find(kind) == -1:
            css += f" {kind}"
    else:
        css = kind
    present = css.split()
    for token in f"{classes} is-invalid".split() if errors else classes.split():
        if token not in present:
            css += f" {token}"
            present.append(token)
    return {"class": css}


def _errors_and_help(bound, errors) -> str:
    return _error_block(bound, errors) + _help(bound)


def _error_block(bound, errors) -> str:
    if not errors:
        return ""
    auto_id = conditional_escape(bound.auto_id)
    items = "".join(
        f'<p id="error_{number}_{auto_id}"><strong>{conditional_escape(error)}</strong></p>'
        for number, error in enumerate(errors, start=1)
    )
    field_id = conditional_escape(getattr(errors, "field_id", None))
    return f'<div id="{field_id}_error" class="invalid-feedback">{items}</div>'


def _help(bound) -> str:
    help_text = bound.help_text
    if not help_text:
        return ""
    id_attr = f'id="{conditional_escape(bound.auto_id)}_helptext" ' if bound.auto_id else ""
    return f'<div {id_attr}class="form-text">{help_text}</div>'


# ---------------------------------------------------------------------------- widgets


def _attrs(attrs: dict) -> str:
    """Django's widgets/attrs.html."""
    return "".join(
        f" {name}" if value is True else f' {name}="{escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


def _context(bound, attrs: dict) -> dict:
    """What BoundField.as_widget() hands the widget's template."""
    widget = bound.field.widget
    if bound.field.localize:
        widget.is_localized = True
    attrs = bound.build_widget_attrs(attrs, widget)
    if bound.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", bound.auto_id)
    return widget.get_context(bound.html_name, bound.value(), attrs)["widget"]


def _widget(bound, attrs: dict) -> str:
    data = _context(bound, attrs)
    template_name = bound.field.widget.template_name
    name = conditional_escape(data["name"])
    if template_name == "django/forms/widgets/textarea.html":
        value = data["value"]
        return (
            f'<textarea name="{name}"{_attrs(data["attrs"])}>\n'
            f"{conditional_escape(value) if value else ''}</textarea>"
        )
    if template_name == "django/forms/widgets/select.html":
        return _select(name, data)
    value = data["value"]
    value_attr = "" if value is None else f' value="{escape(str(value))}"'
    return f'<input type="{data["type"]}" name="{name}"{value_attr}{_attrs(data["attrs"])}>'


def _select(name, data) -> str:
    out = [f'<select name="{name}"{_attrs(data["attrs"])}>']
    for group_name, options, _index in data["optgroups"]:
        if group_name:
            out.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
        out.extend(
            f'\n  <option value="{escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
            f"{conditional_escape(option['label'])}</option>"
            for option in options
        )
        if group_name:
            out.append("\n  </optgroup>")
    out.append("\n</select>")
    return "".join(out)


def _choices(bound, errors) -> str:
    """crispy-bootstrap5's layout/radio_checkbox_select.html: one .form-check per option,
    the errors under the last one, the help text after the group."""
    widget = bound.field.widget
    id_ = widget.attrs.get("id") or bound.auto_id
    attrs = bound.build_widget_attrs({"id": id_} if id_ else {})
    groups = widget.optgroups(bound.html_name, widget.format_value(bound.value()), attrs)
    invalid = " is-invalid" if errors else ""
    name = conditional_escape(bound.html_name)
    out = ["<div >"]
    last_group = len(groups) - 1
    for group_number, (group, options, _index) in enumerate(groups):
        if group:
            out.append(f"<strong>{conditional_escape(group)}</strong>")
        last_option = len(options) - 1
        for number, option in enumerate(options):
            value = conditional_escape(localize(option["value"], use_l10n=False))
            label = conditional_escape(localize(option["label"], use_l10n=False))
            option_id = conditional_escape(option["attrs"].get("id", ""))
            out.append(
                f'<div class="form-check"><input type="{option["type"]}" '
                f'class="form-check-input{invalid}" name="{name}" value="{value}"'
                f'{_attrs(option["attrs"])}> <label for="{option_id}" class="form-check-label">'
                f"{label}</label>"
            )
            if errors and number == last_option and group_number == last_group:
                out.append(_error_block(bound, errors))
            out.append("</div>")
    out.append("</div>")
    out.append(_help(bound))
    return " ".join(part for part in out if part)


def _file(bound, errors) -> str:
    """crispy-bootstrap5's layout/field_file.html, for a file input showing no stored file."""
    parts = []
    for subwidget in bound.subwidgets:
        data = subwidget.data
        if data.get("is_initial"):
            raise Unhandled("a file input that shows a stored file")
        attrs = data["attrs"]
        css = f" {attrs['class']}" if attrs.get("class") else ""
        rest = _attrs({name: value for name, value in attrs.items() if name != "class"})
        opening = '<div class="is-invalid">' if errors else "<div>"
        parts.append(
            f"{opening}"
            f'<input type="{data["type"]}" name="{conditional_escape(data["name"])}" '
            f'class="form-control{css}{" is-invalid" if errors else ""}"'
            f"{' disabled' if bound.field.disabled else ''}{rest}> "
            f"{_errors_and_help(bound, errors)}</div>"
        )
    return " ".join(parts)
