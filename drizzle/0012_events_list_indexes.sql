-- Events: (node_name, id) and (event_type, id) instead of the (column, timestamp) indexes, and none
-- on pot_id. A filtered page of GET /events (ORDER BY id DESC LIMIT n, the cursor an id bound) now
-- walks the index in id order and stops after n rows; with (column, timestamp) SQLite sorted every
-- matching row first. Fewer indexes also cut the writer's CPU per insert. See src/db/schema.ts.
-- On a large table the CREATE INDEX statements take a few seconds per million rows, once.
DROP INDEX `events_node_ts_idx`;--> statement-breakpoint
DROP INDEX `events_type_ts_idx`;--> statement-breakpoint
DROP INDEX `events_pot_ts_idx`;--> statement-breakpoint
CREATE INDEX `events_node_id_idx` ON `events` (`node_name`,`id`);--> statement-breakpoint
CREATE INDEX `events_type_id_idx` ON `events` (`event_type`,`id`);