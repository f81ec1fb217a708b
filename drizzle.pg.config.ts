// drizzle-kit configuration of the PostgreSQL schema (src/db/pg-schema.ts); `npm run db:generate:pg`
// writes its migrations into drizzle/pg/. The SQLite one is drizzle.config.ts.
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/pg-schema.ts',
  out: './drizzle/pg',
});
