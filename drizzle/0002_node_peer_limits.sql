CREATE TABLE `unknown_registrations` (
	`address_key` text PRIMARY KEY NOT NULL,
	`last_address` text NOT NULL,
	`attempts` integer NOT NULL,
	`first_seen_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`last_names` text DEFAULT '[]' NOT NULL,
	`last_result` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `unknown_registrations_last_seen_idx` ON `unknown_registrations` (`last_seen_at`);--> statement-breakpoint
ALTER TABLE `nodes` ADD `pending_source` text;--> statement-breakpoint
CREATE INDEX `nodes_pending_source_idx` ON `nodes` (`pending_source`);