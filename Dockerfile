FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -e . && useradd --create-home portal && mkdir -p var && chown portal var
USER portal
EXPOSE 8000
CMD ["python", "manage.py", "runserver", "0.0.0.0:8000"]
