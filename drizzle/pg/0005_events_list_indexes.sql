-- The same events indexes as the SQLite migration drizzle/0012: (node_name, id) and (event_type, id) for
-- filtered pages in id order (each partition's index read in order and merged), none on pot_id,
-- and no (column, timestamp) ones. Statements on the partitioned parent apply to every partition.
DROP INDEX "events_node_ts_idx";--> statement-breakpoint
DROP INDEX "events_type_ts_idx";--> statement-breakpoint
DROP INDEX "events_pot_ts_idx";--> statement-breakpoint
CREATE INDEX "events_node_id_idx" ON "events" USING btree ("node_name","id");--> statement-breakpoint
CREATE INDEX "events_type_id_idx" ON "events" USING btree ("event_type","id");