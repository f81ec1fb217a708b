# Build stage: compiles better-sqlite3 from source and the TypeScript sources to dist/.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci runs the prepare script (the console build); without web/ yet it only says so.
COPY scripts/prepare.mjs scripts/build-console.ts ./scripts/
# better-sqlite3 compiles here (about two minutes); --foreground-scripts shows its progress.
RUN npm ci --no-audit --no-fund --foreground-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The operator console: web/ -> web/dist (npm ci above ran before web/ was copied, so build it here).
COPY web ./web
RUN npm run build && npm run build:web && npm prune --omit=dev

# Runtime stage: only what the core needs to run. No redis-server in the image: set REDIS_URL.
# The core is PID 1 and handles SIGTERM itself (docker stop: graceful shutdown).
FROM node:20-bookworm-slim
# MALLOC_MMAP_THRESHOLD_: buffers of 64 KiB or more get their own mapping, so the memory of an
# hpfeeds burst goes back to the system afterwards (see src/hpfeeds/idle-gc.ts).
ENV NODE_ENV=production APIARY_DATA_DIR=/data MALLOC_MMAP_THRESHOLD_=65536
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
COPY package.json ./
COPY bin ./bin
COPY drizzle ./drizzle
COPY schemas ./schemas
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 9001 10000
# Liveness: the process serves HTTP. (Readiness, /readyz, also needs Redis; compose checks that.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.API_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/apiary.js"]
CMD ["serve"]
