CREATE TABLE `attack_asn` (
	`asn` integer PRIMARY KEY NOT NULL,
	`org` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `attack_ignored` (
	`bucket` integer PRIMARY KEY NOT NULL,
	`count` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `attack_meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `attack_minute` (
	`bucket` integer NOT NULL,
	`node` text NOT NULL,
	`pot_type` text NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`bucket`, `node`, `pot_type`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `attack_rollup_day` (
	`dim` integer NOT NULL,
	`bucket` integer NOT NULL,
	`node` text NOT NULL,
	`pot_type` text NOT NULL,
	`key` text NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`dim`, `bucket`, `node`, `pot_type`, `key`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `attack_rollup_hour` (
	`dim` integer NOT NULL,
	`bucket` integer NOT NULL,
	`node` text NOT NULL,
	`pot_type` text NOT NULL,
	`key` text NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`dim`, `bucket`, `node`, `pot_type`, `key`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `attack_session_steps` (
	`session_id` integer NOT NULL,
	`event_id` integer NOT NULL,
	`at` integer NOT NULL,
	`kind` text NOT NULL,
	`value` text NOT NULL,
	`detail` text,
	PRIMARY KEY(`session_id`, `event_id`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `attack_sessions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node` text NOT NULL,
	`pot_id` text NOT NULL,
	`pot_type` text NOT NULL,
	`session` text NOT NULL,
	`src_ip` text,
	`src_port` integer,
	`dest_ip` text,
	`dest_port` integer,
	`protocol` text,
	`started_at` integer NOT NULL,
	`last_seen` integer NOT NULL,
	`closed` integer DEFAULT 0 NOT NULL,
	`events` integer NOT NULL,
	`logins_failed` integer DEFAULT 0 NOT NULL,
	`username` text,
	`password` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `attack_sessions_key_idx` ON `attack_sessions` (`node`,`pot_id`,`session`);--> statement-breakpoint
CREATE INDEX `attack_sessions_started_idx` ON `attack_sessions` (`started_at`);--> statement-breakpoint
CREATE INDEX `attack_sessions_ip_idx` ON `attack_sessions` (`src_ip`,`started_at`);--> statement-breakpoint
CREATE INDEX `attack_sessions_last_seen_idx` ON `attack_sessions` (`last_seen`);--> statement-breakpoint
CREATE TABLE `attacker_facts` (
	`ip` text NOT NULL,
	`kind` integer NOT NULL,
	`value` text NOT NULL,
	`count` integer NOT NULL,
	`first_seen` integer NOT NULL,
	`last_seen` integer NOT NULL,
	PRIMARY KEY(`ip`, `kind`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `attackers` (
	`ip` text PRIMARY KEY NOT NULL,
	`first_seen` integer NOT NULL,
	`last_seen` integer NOT NULL,
	`events` integer NOT NULL,
	`scope` text NOT NULL,
	`country` text,
	`asn` integer,
	`as_org` text,
	`city` text,
	`latitude` real,
	`longitude` real,
	`scanner` text,
	`logins_failed` integer DEFAULT 0 NOT NULL,
	`logins_ok` integer DEFAULT 0 NOT NULL,
	`commands` integer DEFAULT 0 NOT NULL,
	`downloads` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `attackers_last_seen_idx` ON `attackers` (`last_seen`);