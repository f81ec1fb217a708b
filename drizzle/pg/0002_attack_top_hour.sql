CREATE TABLE "attack_top_hour" (
	"dim" integer NOT NULL,
	"bucket" bigint NOT NULL,
	"key" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "attack_top_hour_dim_bucket_key_pk" PRIMARY KEY("dim","bucket","key")
);
--> statement-breakpoint
CREATE TABLE "attack_top_hour_floor" (
	"dim" integer NOT NULL,
	"bucket" bigint NOT NULL,
	"floor" bigint NOT NULL,
	"n" integer NOT NULL,
	CONSTRAINT "attack_top_hour_floor_dim_bucket_pk" PRIMARY KEY("dim","bucket")
);
