# One image for web, worker and beat. Front-end assets come from PyPI packages at build time.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=partnerops.settings.prod
WORKDIR /app
# pg_dump / pg_restore for `manage.py backup` and `restore` (Debian's client package).
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir .
COPY . .
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
RUN useradd --system --home /app partnerops && mkdir -p /app/var && chown -R partnerops /app/var
USER partnerops
EXPOSE 8000
CMD ["gunicorn", "partnerops.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
