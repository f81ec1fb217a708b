-- Events: the node and event type list filters move from the (node_name, id) and (event_type, id)
-- indexes to side tables the events writer fills in bulk (src/events/side-index.ts). The indexes'
-- hot leaves (one per node and per type) were written into the WAL at every commit: ~15 pages per
-- batch, about 5 µs per event at batch 100. The side tables are filled sorted every few thousand
-- rows, so each leaf is written once per catch-up. WITHOUT ROWID (hand edit: drizzle cannot say it):
-- the key is the whole row. They are filled here from the existing rows, and the watermark set to
-- the newest id; on a large table this takes a few seconds per million rows, once.
CREATE TABLE `events_by_node` (
	`node_name` text NOT NULL,
	`id` integer NOT NULL,
	PRIMARY KEY(`node_name`, `id`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `events_by_type` (
	`event_type` text NOT NULL,
	`id` integer NOT NULL,
	PRIMARY KEY(`event_type`, `id`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `events_side_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `events_by_node` (`node_name`, `id`) SELECT `node_name`, `id` FROM `events` ORDER BY `node_name`, `id`;--> statement-breakpoint
INSERT INTO `events_by_type` (`event_type`, `id`) SELECT `event_type`, `id` FROM `events` ORDER BY `event_type`, `id`;--> statement-breakpoint
INSERT INTO `events_side_state` (`key`, `value`) SELECT 'indexed_through', coalesce(max(`id`), 0) FROM `events`;--> statement-breakpoint
DROP INDEX `events_node_id_idx`;--> statement-breakpoint
DROP INDEX `events_type_id_idx`;
