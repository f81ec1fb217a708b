CREATE TABLE "analytics_backlog" (
	"first_id" bigint PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"noted_at" bigint NOT NULL,
	"received_from" bigint NOT NULL,
	"ids" bigint[] NOT NULL,
	"from_status" boolean[] NOT NULL
);
--> statement-breakpoint
CREATE TABLE "event_outbox" (
	"first_id" bigint PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"noted_at" bigint NOT NULL,
	"received_from" bigint NOT NULL,
	"ids" bigint[] NOT NULL,
	"from_status" boolean[] NOT NULL
);
