CREATE TABLE `attack_top_day` (
	`dim` integer NOT NULL,
	`bucket` integer NOT NULL,
	`key` text NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`dim`, `bucket`, `key`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `attack_top_day_floor` (
	`dim` integer NOT NULL,
	`bucket` integer NOT NULL,
	`floor` integer NOT NULL,
	`n` integer NOT NULL,
	PRIMARY KEY(`dim`, `bucket`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE INDEX `attack_rollup_day_key_idx` ON `attack_rollup_day` (`dim`,`key`,`bucket`);--> statement-breakpoint
CREATE INDEX `attack_rollup_hour_key_idx` ON `attack_rollup_hour` (`dim`,`key`,`bucket`);