# One image for the web tier and the CPU worker; build with --build-arg EXTRAS=gpu for GPU workers.
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 WORKBENCH_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workbench ./workbench
COPY workers ./workers
# GPU workers: Triton (torch.compile, FlexAttention) builds its kernel launchers with a C compiler at run time.
RUN if [ -n "$EXTRAS" ]; then apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
        && rm -rf /var/lib/apt/lists/*; fi
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"
COPY . .
# Collected as production runs (DEBUG off): the manifest storage it serves with needs the manifest written here.
RUN DEBUG=0 SECRET_KEY=only-for-collectstatic-at-build-time ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput -v0
# The paths the compose volumes mount (a named volume takes the owner of the image's folder) and the model cache.
RUN useradd --create-home workbench && mkdir -p /data/media /models && chown -R workbench /data /models
USER workbench
EXPOSE 8000
