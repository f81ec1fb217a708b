-- Custom migration (drizzle-kit cannot express partitioning): events becomes a table partitioned by
-- RANGE of received_at (epoch ms), one partition per UTC day, created ahead and dropped at retention
-- by src/db/pg-partitions.ts. Same columns, primary key and indexes as 0000_init created (so the
-- drizzle snapshot stays true); the table is empty here, this runs right after 0000.
-- No DEFAULT partition: a row for a day without a partition is refused (the store creates the day's
-- partition first), instead of landing in a catch-all that would block creating that day later.
DROP TABLE "events";
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigserial NOT NULL,
	"node_name" text NOT NULL,
	"pot_id" text NOT NULL,
	"pot_type" text NOT NULL,
	"event_type" text NOT NULL,
	"timestamp" bigint NOT NULL,
	"data" text NOT NULL,
	"received_at" bigint NOT NULL,
	CONSTRAINT "events_id_received_at_pk" PRIMARY KEY("id","received_at")
) PARTITION BY RANGE ("received_at");
--> statement-breakpoint
CREATE INDEX "events_received_idx" ON "events" USING btree ("received_at");
--> statement-breakpoint
CREATE INDEX "events_node_ts_idx" ON "events" USING btree ("node_name","timestamp");
--> statement-breakpoint
CREATE INDEX "events_type_ts_idx" ON "events" USING btree ("event_type","timestamp");
--> statement-breakpoint
CREATE INDEX "events_pot_ts_idx" ON "events" USING btree ("pot_id","timestamp");
