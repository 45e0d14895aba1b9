FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY . .
# The portal and its dependencies, without the dev and bench extras. Static files are collected into the
# image (var/static, served by WhiteNoise with hashed names): every container of one image serves the same
# files, and none waits for another to collect them. The key only lets the settings load for that step.
RUN pip install --no-cache-dir . \
    && mkdir -p var \
    && SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input \
    && useradd --create-home portal \
    && chown portal var
USER portal
EXPOSE 8000
CMD ["gunicorn", "--config", "python:portal.gunicorn_config", "portal.wsgi:application"]
