CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_token_hash_unique` ON `api_tokens` (`token_hash`);--> statement-breakpoint
CREATE TABLE `authkeys` (
	`ident` text PRIMARY KEY NOT NULL,
	`owner` text DEFAULT '' NOT NULL,
	`secret` text NOT NULL,
	`pubchans` text DEFAULT '[]' NOT NULL,
	`subchans` text DEFAULT '[]' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `commands` (
	`id` text PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL,
	`node_name` text NOT NULL,
	`kind` text NOT NULL,
	`pot_id` text,
	`command` text NOT NULL,
	`status` text NOT NULL,
	`result` text,
	`batch_id` text,
	`requested_by` text,
	`created_at` integer NOT NULL,
	`sent_at` integer,
	`finished_at` integer,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `commands_node_seq_idx` ON `commands` (`node_name`,`seq`);--> statement-breakpoint
CREATE INDEX `commands_node_status_seq_idx` ON `commands` (`node_name`,`status`,`seq`);--> statement-breakpoint
CREATE INDEX `commands_status_idx` ON `commands` (`status`);--> statement-breakpoint
CREATE INDEX `commands_batch_idx` ON `commands` (`batch_id`);--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node_name` text NOT NULL,
	`pot_id` text NOT NULL,
	`pot_type` text NOT NULL,
	`event_type` text NOT NULL,
	`timestamp` integer NOT NULL,
	`data` text NOT NULL,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_received_idx` ON `events` (`received_at`);--> statement-breakpoint
CREATE INDEX `events_node_ts_idx` ON `events` (`node_name`,`timestamp`);--> statement-breakpoint
CREATE INDEX `events_type_ts_idx` ON `events` (`event_type`,`timestamp`);--> statement-breakpoint
CREATE INDEX `events_pot_ts_idx` ON `events` (`pot_id`,`timestamp`);--> statement-breakpoint
CREATE TABLE `node_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node_name` text NOT NULL,
	`kind` text NOT NULL,
	`message` text,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `node_log_node_at_idx` ON `node_log` (`node_name`,`at`);--> statement-breakpoint
CREATE TABLE `nodes` (
	`name` text PRIMARY KEY NOT NULL,
	`node_id` text,
	`node_type` text,
	`address` text,
	`port` integer,
	`status` text DEFAULT 'Offline' NOT NULL,
	`enrollment` text NOT NULL,
	`totp_secret` text,
	`last_totp_step` integer,
	`remote_address` text,
	`transport` text,
	`connected_at` integer,
	`last_seen_at` integer,
	`disconnected_at` integer,
	`disconnect_reason` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `nodes_enrollment_idx` ON `nodes` (`enrollment`);--> statement-breakpoint
CREATE TABLE `pots` (
	`node_name` text NOT NULL,
	`pot_id` text NOT NULL,
	`pot_type` text DEFAULT '' NOT NULL,
	`status` text NOT NULL,
	`last_message` text,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`node_name`, `pot_id`),
	FOREIGN KEY (`node_name`) REFERENCES `nodes`(`name`) ON UPDATE no action ON DELETE cascade
);
