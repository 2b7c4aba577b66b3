# syntax=docker/dockerfile:1

# One image, every role: the command picks serve, worker, migrate or all (the default).
#   docker build -t groundwork .
#   docker run --rm --env-file prod.env groundwork migrate             # then serve, worker
#   docker run --rm --env-file prod.env -p 3000:3000 groundwork         # all
# APP_ENV is production: prod.env needs at least AUTH_JWT_PRIVATE_KEY, APP_SECRET, DATABASE_URL, PUBLIC_URL,
# SMTP_URL and MAIL_FROM (else exit 78; `npm run keys:generate` writes the secrets), and should set
# METRICS_TOKEN, and REDIS_URL for several processes (docs/deployment.md).

# ---- build: compile src/ to dist/ with the full dependency tree ----
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled code only ----
FROM node:24-bookworm-slim AS runtime
# glibc's malloc keeps many arenas per thread: a worker encoding 12 MP images one after another grew
# to 530-720 MB RSS with a 7 MB JavaScript heap; with two arenas it stayed at 316-410 MB, CPU no worse
# (docs/benchmarks.md, Files).
ENV APP_ENV=production NODE_ENV=production MALLOC_ARENA_MAX=2 GROUNDWORK_ENV_FILE=off
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
# app.ts reads the version from ../package.json relative to dist/, i.e. /app/package.json.
COPY --from=build /app/dist ./dist
# Files stay owned by root: the app can read its code but not change it.
USER node
EXPOSE 3000
# Liveness only (the process answers). Slim images have no curl, so node's fetch does it.
# With TLS_CERT_FILE set the server speaks HTTPS; the certificate cannot match 127.0.0.1, so it is not verified here.
# serve, worker and all listen on PORT (a worker serves only /health/* and /metrics), so the check
# fits them; migrate has no HTTP server and must turn it off (compose: healthcheck.disable).
# Orchestrators should probe /health/ready for readiness (see deploy/compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const tls = Boolean(process.env.TLS_CERT_FILE); if (tls) process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; fetch((tls ? 'https' : 'http') + '://127.0.0.1:' + (process.env.PORT || '3000') + '/health/live', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The process drains on SIGTERM (readiness 503, SHUTDOWN_DRAIN_DELAY_MS, then in-flight requests finish):
# give it SHUTDOWN_GRACE_MS + SHUTDOWN_DRAIN_DELAY_MS before SIGKILL (docker stop -t, stop_grace_period).
STOPSIGNAL SIGTERM
# The entrypoint is the program, the command is its role, so `docker run groundwork migrate` and
# compose's `command: serve` work. The default runs `node dist/main.js all`.
ENTRYPOINT ["node", "dist/main.js"]
CMD ["all"]
