# Vigil: one container per node. Build: the same install and build steps as CI (npm ci, npm run build).
FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles its native addon from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json asconfig.json ./
COPY assembly ./assembly
COPY src ./src
COPY bin ./bin
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    VIGIL_DATA_DIR=/var/lib/vigil
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build ./build
COPY --from=build /app/bin ./bin
# The dashboard's static files are read at start from src/dashboard (see src/http/static-files.ts).
COPY --from=build /app/src/dashboard ./src/dashboard
RUN mkdir -p /var/lib/vigil && chown node:node /var/lib/vigil
VOLUME ["/var/lib/vigil"]
USER node
# docker stop sends SIGTERM: the daemon drains, checkpoints and exits.
ENTRYPOINT ["node", "bin/vigil.js"]
CMD ["run"]
