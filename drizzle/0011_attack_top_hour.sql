CREATE TABLE `attack_top_hour` (
	`dim` integer NOT NULL,
	`bucket` integer NOT NULL,
	`key` text NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`dim`, `bucket`, `key`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `attack_top_hour_floor` (
	`dim` integer NOT NULL,
	`bucket` integer NOT NULL,
	`floor` integer NOT NULL,
	`n` integer NOT NULL,
	PRIMARY KEY(`dim`, `bucket`)
) WITHOUT ROWID;
