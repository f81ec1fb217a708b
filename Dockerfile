# Build stage: compiles better-sqlite3 from source and the TypeScript sources to dist/.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: only what the core needs to run.
FROM node:20-bookworm-slim
ENV NODE_ENV=production APIARY_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY drizzle ./drizzle
COPY schemas ./schemas
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 9001 10000
ENTRYPOINT ["node", "bin/apiary.js"]
CMD ["serve"]
