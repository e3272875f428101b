# Vigil: one container per node. Build: the same install and build steps as CI (npm ci, npm run build).
#   docker build -t vigil --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%FT%TZ) .
#   docker run --init ...   (see README: Docker)
FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles its native addon from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# package.json's allowScripts (which dependencies may run install scripts, enforced by .npmrc's
# strict-allow-scripts) needs npm 11.16 or later; Node 20 ships npm 10.
RUN npm install -g "npm@^11.16" --no-audit --no-fund
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json asconfig.json ./
COPY assembly ./assembly
COPY src ./src
COPY bin ./bin
# Then keep only what runs: the uWebSockets.js binary of this platform and Node ABI (the package ships
# ~110 MB of binaries for every other one; the build fails if there is none for this Node), and
# better-sqlite3's compiled addon without its SQLite sources and object files.
RUN npm run build && npm prune --omit=dev \
 && uws=node_modules/uWebSockets.js \
 && keep="uws_$(node -p 'process.platform + "_" + process.arch + "_" + process.versions.modules').node" \
 && if [ ! -f "$uws/binaries/$keep" ]; then echo "uWebSockets.js has no $keep for this Node" >&2; exit 1; fi \
 && find "$uws/binaries" -name '*.node' ! -name "$keep" -delete \
 && rm -f "$uws"/dist/*.node \
 && sqlite=node_modules/better-sqlite3 \
 && mv "$sqlite/build/Release/better_sqlite3.node" /tmp/ \
 && rm -rf "$sqlite/build" "$sqlite/deps" "$sqlite/src" \
 && mkdir -p "$sqlite/build/Release" && mv /tmp/better_sqlite3.node "$sqlite/build/Release/"

FROM node:20-bookworm-slim
# Kept equal to package.json's version by test/docker.test.ts; REVISION and CREATED come from the build.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Real-time error-rate alerting for video playback" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.created="$CREATED" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:20-bookworm-slim"
ENV NODE_ENV=production \
    VIGIL_DATA_DIR=/var/lib/vigil
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/kernel.wasm /app/build/kernel.debug.wasm ./build/
COPY --from=build /app/bin ./bin
# The dashboard's static files are read at start from src/dashboard (see src/http/static-files.ts).
COPY --from=build /app/src/dashboard ./src/dashboard
RUN mkdir -p /var/lib/vigil && chown node:node /var/lib/vigil
VOLUME ["/var/lib/vigil"]
USER node
# The dashboard, API, /metrics and probes (VIGIL_HTTP_PORT).
EXPOSE 8080
# GET /readyz of the daemon at VIGIL_HTTP_HOST/PORT with Node itself (the image has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "bin/vigil.js", "healthcheck"]
# docker stop sends SIGTERM: the daemon drains, checkpoints and exits. Run with --init so that an init
# (tini) is PID 1 rather than node, see README.
ENTRYPOINT ["node", "bin/vigil.js"]
CMD ["run"]
